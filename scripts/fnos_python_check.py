#!/usr/bin/env python3
"""Fidelity check: drive the fnOS emulator with pyfnos (PyPI `fnos`), an
independent Python fnOS client nobody in this project wrote.

Logs in, reads the host name and user storage, lists the home view and a
folder, reads live figures, reconnects with the stored token and secret,
and checks that a non-admin gets errno 4352. Any failure raises, so the
process exits non-zero.
"""

import argparse
import asyncio
import sys

from fnos import FnosClient, File, ResourceMonitor, Store, SystemInfo, User


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok: {what}")


async def connected(endpoint):
    client = FnosClient()
    await client.connect(endpoint, timeout=10.0)
    check(client.session_id and isinstance(client.session_id, str), "si arrives as a string")
    check(client.public_key.startswith("-----BEGIN PUBLIC KEY-----"), "getRSAPub gives an SPKI PEM")
    return client


async def admin_checks(endpoint, user, password):
    client = await connected(endpoint)
    # pyfnos asks for the host name unsigned right after the key exchange.
    for _ in range(50):
        if client.host_name:
            break
        await asyncio.sleep(0.1)
    check(client.host_name, f"host name before login: {client.host_name}")

    result = await client.login(user, password)
    check(result.get("result") == "succ", f"login succeeds: {result.get('result')} {result.get('errno')}")
    check(client.get_decrypted_secret(), "the secret opens with pyfnos' AES key and IV")

    host = await SystemInfo(client).get_host_name()
    check(host.get("result") == "succ" and host["data"]["hostName"], f"signed getHostName: {host['data']}")

    storage = await Store(client).get_user_storage(space_info=True, stor_info=True, quota_info=True)
    check(storage.get("result") == "succ", "stor.getUserStorage succeeds")
    for volume in storage["stor"]:
        check(volume["frsize"] < volume["fssize"],
              f"volume {volume['id']}: {volume['frsize']} free of {volume['fssize']} bytes")

    files = File(client)
    home = await files.list()
    check(home.get("files"), f"home view lists {[e['name'] for e in home['files']]}")
    check(all("v" in e for e in home["files"]), "home view entries carry v")
    first = home["files"][0]
    folder = f"vol{first['v']}/{first['uid']}/{first['name']}"
    listing = await files.list(folder)
    # pyfnos resolves a request on its first frame: for a multi-frame
    # answer that is the first batch of entries.
    check(listing.get("files"), f"{folder} lists {[e['name'] for e in listing['files']]}")

    status = await ResourceMonitor(client).general()
    item = status["data"]["item"]
    check(0 <= item["cpuBusy"] <= 100 and "netSpeed" in item, f"resmon.gen: {item}")

    info = await User(client).getInfo()
    check(info["userInfo"]["user"] == user, "user.info names the account")

    # A second connection signs in with the stored token and secret.
    again = await connected(endpoint)
    answer = await again.login_via_token(client.token, client.long_token, client.get_decrypted_secret())
    check(answer.get("result") == "succ", f"user.authToken with the stored S: {answer}")
    check((await User(again).isAdmin()).get("admin") is True, "signed requests work after authToken")
    await again.close()

    wrong = await connected(endpoint)
    failed = await wrong.login(user, password + "-wrong")
    check(failed.get("errno") == 131072, f"wrong password gives errno 131072: {failed}")
    await wrong.close()
    await client.close()


async def guest_checks(endpoint, guest):
    name, password = guest.split(":", 1)
    client = await connected(endpoint)
    result = await client.login(name, password)
    check(result.get("result") == "succ", "guest login succeeds")
    denied = await ResourceMonitor(client).cpu()
    check(denied.get("errno") == 4352, f"non-admin resmon gives errno 4352: {denied}")
    storage = await Store(client).get_user_storage()
    check(storage.get("result") == "succ", "non-admin reads its storage")
    await client.close()


async def two_factor_checks(endpoint, user, password, code):
    client = await connected(endpoint)
    challenge = await client.login(user, password)
    check(challenge.get("twofaRequired") is True, f"pyfnos sees a two-factor challenge: {challenge}")
    wrong = "000000" if code != "000000" else "111111"
    refused = await client.submit_twofa_code(wrong)
    check(refused.get("errno") == 102570104, f"wrong code gives errno 102570104: {refused}")
    done = await client.submit_twofa_code(code)
    check(done.get("result") == "succ" and client.get_decrypted_secret(), "right code completes the login")
    check((await User(client).isAdmin()).get("admin") is True, "signed requests work after two-factor login")
    await client.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="HOST:PORT of the emulator")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--guest", help="NAME:PASSWORD of a non-admin account")
    parser.add_argument("--two-factor-code", help="the emulator runs with --two-factor-code CODE")
    args = parser.parse_args()
    if args.two_factor_code:
        await two_factor_checks(args.endpoint, args.user, args.password, args.two_factor_code)
        print("pyfnos two-factor check passed")
        return
    await admin_checks(args.endpoint, args.user, args.password)
    if args.guest:
        await guest_checks(args.endpoint, args.guest)
    print("pyfnos fidelity check passed")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as error:  # report any failure as a non-zero exit
        print(f"FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
