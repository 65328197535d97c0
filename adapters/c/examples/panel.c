/*
 * panel: log in to an fnOS NAS, print its front-panel snapshot and the
 * next push, then close; or, with --cfms, log in to a CFMS server, print
 * its information and root folder, and the lockdown push that switching
 * lockdown on (then off again) brings. CFMS is negotiated: the first
 * connection asks as protocol 13; a 3-5 server closes it
 * (NASLINK_EVENT_RECONNECT_TEXT), and the program reconnects speaking
 * text, as every C caller must. A complete POSIX program over
 * libnaslink_capi.a: one TCP socket, poll(2), getrandom(2),
 * CLOCK_MONOTONIC. The library does no I/O; this file is all the I/O
 * there is.
 *
 *   panel ws://127.0.0.1:5666/websocket?type=main admin admin
 *   panel --cfms ws://127.0.0.1:5104/ admin admin
 *
 * Exit status: 0 snapshot and push printed, 1 login or request failed,
 * 2 usage or system error, 3 gave up waiting (20 s).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "naslink.h"

#define DEADLINE_MS 20000u

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The library's randomness: the kernel's CSPRNG. */
static void os_random(void *ctx, uint8_t *buf, size_t len) {
    (void)ctx;
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("getrandom");
            abort(); /* no safe way on without randomness */
        }
        buf += n;
        len -= (size_t)n;
    }
}

static int check(naslink_result r, const char *what) {
    if (r != NASLINK_OK) {
        fprintf(stderr, "panel: %s: %s\n", what, naslink_strerror(r));
        return 0;
    }
    return 1;
}

/* "ws://HOST:PORT/..." -> a connected, non-blocking TCP socket. */
static int dial(const char *url) {
    char host[256], port[8] = "80";
    const char *p = url;
    if (strncmp(p, "ws://", 5) != 0) {
        fprintf(stderr, "panel: only ws:// URLs (TLS is the caller's job)\n");
        return -1;
    }
    p += 5;
    size_t n = strcspn(p, ":/");
    if (n == 0 || n >= sizeof host) return -1;
    memcpy(host, p, n);
    host[n] = '\0';
    if (p[n] == ':') {
        size_t m = strcspn(p + n + 1, "/");
        if (m == 0 || m >= sizeof port) return -1;
        memcpy(port, p + n + 1, m);
        port[m] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "panel: %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        perror("panel: connect");
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* One figure of a reply: its JSON text at `path`, or "?". */
static void figure(const naslink_event *ev, const char *label, const char *path) {
    const uint8_t *v;
    size_t len;
    if (naslink_json_get(ev->json, ev->json_len, path, &v, &len) == NASLINK_OK)
        printf("  %-14s %.*s%s\n", label, len > 200 ? 200 : (int)len, (const char *)v,
               len > 200 ? "..." : "");
    else
        printf("  %-14s ?\n", label);
}

/* The front-panel requests, and what to print from each answer. */
struct query {
    naslink_fnos_panel which;
    naslink_reqid reqid;
    int done;
};

static struct query queries[] = {
    {.which = NASLINK_PANEL_HOST_NAME},
    {.which = NASLINK_PANEL_UPTIME},
    {.which = NASLINK_PANEL_RESMON_GEN},
    {.which = NASLINK_PANEL_MEMORY},
    {.which = NASLINK_PANEL_STORAGE},
};
#define QUERIES (sizeof queries / sizeof queries[0])

static void print_reply(naslink_fnos_panel which, const naslink_event *ev) {
    switch (which) {
    case NASLINK_PANEL_HOST_NAME:
        figure(ev, "host", "data.hostName");
        figure(ev, "version", "data.trimVersion");
        break;
    case NASLINK_PANEL_UPTIME:
        figure(ev, "uptime (s)", "data.uptime");
        break;
    case NASLINK_PANEL_RESMON_GEN:
        figure(ev, "cpu busy %", "data.item.cpuBusy");
        figure(ev, "memory %", "data.item.memPercent");
        figure(ev, "net rx B/s", "data.item.netSpeed.receive");
        figure(ev, "net tx B/s", "data.item.netSpeed.transmit");
        figure(ev, "disk rd B/s", "data.item.storeSpeed.read");
        figure(ev, "disk wr B/s", "data.item.storeSpeed.write");
        break;
    case NASLINK_PANEL_MEMORY:
        figure(ev, "memory total", "data.mem.total");
        figure(ev, "memory used", "data.mem.used");
        break;
    case NASLINK_PANEL_STORAGE:
        figure(ev, "volume size", "stor.0.fssize");
        figure(ev, "volume free", "stor.0.frsize");
        break;
    default:
        break;
    }
}

/* What the program waits for; the event handler moves it on. */
enum stage { LOGGING_IN, ASKING, AWAITING_PUSH, CLOSING, RECONNECT, DONE };

struct app {
    naslink_conn *conn;
    enum stage stage;
    size_t answered;
    int status;
    /* CFMS: the listing and the two lockdown switches. */
    naslink_reqid listing, lock_on, lock_off;
    int lockdown_seen;
    /* CFMS: the protocol version to pin on the next connection (0: none). */
    uint32_t pin;
};

/* Why the session cannot go on, for either protocol. */
static void fail(struct app *app, const naslink_event *ev) {
    switch (ev->kind) {
    case NASLINK_EVENT_LOGIN_FAILED:
        fprintf(stderr, "panel: login failed: %s (code %lld)\n", ev->detail,
                (long long)ev->errno_code);
        app->status = 1;
        app->stage = DONE;
        break;
    case NASLINK_EVENT_REQUEST_ABORTED:
        /* Before the login only the session's own server_info is in
         * flight: a probe closed by a 3-5 server (RECONNECT_TEXT next). */
        if (app->stage == LOGGING_IN) break;
        /* fall through */
    case NASLINK_EVENT_REQUEST_TIMED_OUT:
        fprintf(stderr, "panel: request %s got no answer\n", ev->reqid.text);
        app->status = 1;
        break;
    case NASLINK_EVENT_CLOSED:
        printf("closed: %s\n", ev->detail);
        if (app->pin != 0 && app->stage == LOGGING_IN) {
            app->stage = RECONNECT;
            break;
        }
        if (app->stage != CLOSING) app->status = 1;
        app->stage = DONE;
        break;
    case NASLINK_EVENT_REJECTED:
    case NASLINK_EVENT_TWO_FACTOR_REQUIRED:
    case NASLINK_EVENT_CONNECTION_DEAD:
    case NASLINK_EVENT_TRANSMIT_TOO_SMALL:
    case NASLINK_EVENT_PROTOCOL_UNSUPPORTED:
    case NASLINK_EVENT_MALFORMED:
        fprintf(stderr, "panel: cannot go on (event %d)\n", ev->kind);
        app->status = 1;
        naslink_close(app->conn, now_ms());
        app->stage = CLOSING;
        break;
    default:
        break;
    }
}

static void cfms_request(struct app *app, const char *action, const char *data,
                         naslink_reqid *id) {
    if (!check(naslink_cfms_request(app->conn, now_ms(), action, data, id), action)) {
        app->status = 1;
        app->stage = DONE;
    }
}

/* The opening sequence is done: ask for the root folder. */
static void cfms_ready(struct app *app) {
    uint32_t version = 0;
    naslink_cfms_protocol_version(app->conn, &version);
    printf("speaking protocol %u (pin it for this server to skip the probe)\n", version);
    cfms_request(app, "list_directory", "{\"folder_id\":null}", &app->listing);
    if (app->stage != DONE) app->stage = ASKING;
}

static void on_cfms_event(struct app *app, const naslink_event *ev) {
    uint32_t version = 0;
    switch (ev->kind) {
    case NASLINK_EVENT_CONNECTED:
        printf("connected\n");
        break;
    case NASLINK_EVENT_RECONNECT_TEXT:
        /* CLOSED follows; main() then reconnects with this pin. */
        printf("%s\n", ev->detail);
        app->pin = ev->protocol_version;
        break;
    case NASLINK_EVENT_SERVER_INFO:
        printf("server (protocol %u, lockdown %d):\n", ev->protocol_version, ev->lockdown);
        figure(ev, "name", "data.server_name");
        figure(ev, "version", "data.version");
        break;
    case NASLINK_EVENT_LOGGED_IN:
        printf("logged in (token for %llu s)\n", (unsigned long long)(ev->expires_in_ms / 1000));
        /* Protocol 13 registers no listener: the session is ready now. */
        naslink_cfms_protocol_version(app->conn, &version);
        if (version == 13) cfms_ready(app);
        break;
    case NASLINK_EVENT_LISTENER_REGISTERED:
        /* 3-5: the session is ready once its opening sequence is answered. */
        cfms_ready(app);
        break;
    case NASLINK_EVENT_REPLY:
        if (ev->status != NASLINK_STATUS_SUCCESS) {
            fprintf(stderr, "panel: request %s refused (code %lld)\n", ev->reqid.text,
                    (long long)ev->errno_code);
            app->status = 1;
        }
        if (strcmp(ev->reqid.text, app->listing.text) == 0) {
            printf("root folder:\n");
            figure(ev, "folders", "data.folders");
            figure(ev, "documents", "data.documents");
            printf("switching lockdown on, waiting for the push...\n");
            cfms_request(app, "lockdown", "{\"status\":true}", &app->lock_on);
            app->stage = AWAITING_PUSH;
        } else if (strcmp(ev->reqid.text, app->lock_off.text) == 0) {
            naslink_close(app->conn, now_ms());
            app->stage = CLOSING;
        }
        break;
    case NASLINK_EVENT_LOCKDOWN:
        printf("push: lockdown %s\n", ev->lockdown ? "on" : "off");
        if (ev->lockdown && !app->lockdown_seen) {
            app->lockdown_seen = 1;
            cfms_request(app, "lockdown", "{\"status\":false}", &app->lock_off);
        }
        break;
    default:
        fail(app, ev);
        break;
    }
}

static void on_event(struct app *app, const naslink_event *ev) {
    switch (ev->kind) {
    case NASLINK_EVENT_CONNECTED:
        printf("connected\n");
        break;
    case NASLINK_EVENT_LOGGED_IN:
        printf("logged in (uid %lld, admin %d)\n", (long long)ev->uid, ev->admin);
        for (size_t i = 0; i < QUERIES; i++)
            if (!check(naslink_fnos_request_panel(app->conn, now_ms(), queries[i].which,
                                                  &queries[i].reqid),
                       "request")) {
                app->status = 1;
                app->stage = DONE;
                return;
            }
        printf("front panel:\n");
        app->stage = ASKING;
        break;
    case NASLINK_EVENT_REPLY:
        for (size_t i = 0; i < QUERIES; i++) {
            if (queries[i].done || strcmp(queries[i].reqid.text, ev->reqid.text) != 0) continue;
            if (ev->status == NASLINK_STATUS_PARTIAL) return;
            queries[i].done = 1;
            if (ev->status != NASLINK_STATUS_SUCCESS) {
                fprintf(stderr, "panel: request %d failed (errno %lld)\n", queries[i].which,
                        (long long)ev->errno_code);
                app->status = 1;
            } else {
                print_reply(queries[i].which, ev);
            }
            if (++app->answered == QUERIES) {
                printf("waiting for a push...\n");
                app->stage = AWAITING_PUSH;
            }
        }
        break;
    case NASLINK_EVENT_PUSH:
        printf("push: %.*s\n", (int)ev->json_len, (const char *)ev->json);
        if (app->stage == AWAITING_PUSH) {
            naslink_close(app->conn, now_ms());
            app->stage = CLOSING;
        }
        break;
    default:
        fail(app, ev);
        break;
    }
}

int main(int argc, char **argv) {
    int cfms = argc == 5 && strcmp(argv[1], "--cfms") == 0;
    if (argc != 4 && !cfms) {
        fprintf(stderr, "usage: %s [--cfms] ws://HOST:PORT/PATH USER PASSWORD\n", argv[0]);
        return 2;
    }
    const char *url = argv[1 + cfms], *user = argv[2 + cfms], *password = argv[3 + cfms];
    int fd = dial(url);
    if (fd < 0) return 2;

    /* The connection's memory is ours: size and alignment from the library. */
    size_t align = cfms ? naslink_cfms_align() : naslink_fnos_align();
    size_t size = cfms ? naslink_cfms_size() : naslink_fnos_size();
    void *mem = aligned_alloc(align, (size + align - 1) / align * align);
    if (mem == NULL) return 2;
    struct app app = {.stage = LOGGING_IN};
    naslink_result r;
    /* protocol_version 0 (left out): negotiate. */
    naslink_cfms_config cfms_config = {
        .url = url,
        .user = user,
        .password = password,
        .now_ms = now_ms(),
        .unix_time_s = (uint64_t)time(NULL),
        .listener = true,
    };
    if (cfms) {
        r = naslink_cfms_init(mem, size, &cfms_config, os_random, NULL, &app.conn);
    } else {
        naslink_fnos_config config = {
            .url = url,
            .user = user,
            .password = password,
            .device_name = "panel.c",
            .now_ms = now_ms(),
            .unix_time_s = (uint64_t)time(NULL),
        };
        r = naslink_fnos_init(mem, size, &config, os_random, NULL, &app.conn);
    }
    if (!check(r, "init")) {
        free(mem);
        close(fd);
        return 2;
    }

    uint8_t buf[4096];
    size_t start = 0, end = 0; /* unconsumed input in buf */
    uint64_t give_up = now_ms() + DEADLINE_MS;
    while (app.stage != DONE) {
        /* 1. Events. */
        naslink_event ev;
        while (app.stage != DONE && app.stage != RECONNECT &&
               naslink_poll_event(app.conn, &ev) == NASLINK_OK && ev.kind != NASLINK_EVENT_NONE) {
            if (cfms)
                on_cfms_event(&app, &ev);
            else
                on_event(&app, &ev);
        }
        if (app.stage == DONE) break;
        if (app.stage == RECONNECT) {
            /* The server speaks text: a new socket, the same memory,
             * the version it told us pinned. Once per run. */
            close(fd);
            naslink_deinit(app.conn);
            fd = dial(url);
            if (fd < 0) {
                app.status = 2;
                free(mem);
                return app.status;
            }
            cfms_config.protocol_version = app.pin;
            cfms_config.now_ms = now_ms();
            if (!check(naslink_cfms_init(mem, size, &cfms_config, os_random, NULL, &app.conn),
                       "init")) {
                free(mem);
                close(fd);
                return 2;
            }
            app.pin = 0;
            app.stage = LOGGING_IN;
            start = end = 0;
            continue;
        }

        /* 2. Bytes out, as far as the socket takes them. */
        const uint8_t *out;
        size_t out_len = 0;
        while (naslink_poll_transmit(app.conn, now_ms(), &out, &out_len) == NASLINK_OK &&
               out_len > 0) {
            ssize_t n = send(fd, out, out_len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                naslink_handle_eof(app.conn, now_ms());
                break;
            }
            naslink_advance_transmit(app.conn, (size_t)n);
        }

        /* 3. Bytes in: pending ones first, else wait for the socket or the
         *    library's next deadline. */
        if (start == end) {
            uint64_t at, now = now_ms();
            naslink_poll_timeout(app.conn, &at);
            if (now >= give_up) {
                fprintf(stderr, "panel: gave up after %u ms\n", DEADLINE_MS);
                app.status = 3;
                break;
            }
            uint64_t wait = give_up - now;
            if (at != NASLINK_NO_TIMEOUT) wait = at > now ? at - now : 0;
            if (wait > 1000) wait = 1000;
            struct pollfd pfd = {.fd = fd, .events = POLLIN | (out_len > 0 ? POLLOUT : 0)};
            int ready = poll(&pfd, 1, (int)wait);
            if (ready < 0 && errno != EINTR) {
                perror("panel: poll");
                app.status = 2;
                break;
            }
            if (ready <= 0) {
                naslink_handle_timeout(app.conn, now_ms());
                continue;
            }
            if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t n = recv(fd, buf, sizeof buf, 0);
                if (n > 0) {
                    start = 0;
                    end = (size_t)n;
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                    naslink_handle_eof(app.conn, now_ms());
                }
            }
        }
        if (start < end) {
            size_t used = 0;
            if (!check(naslink_handle_input(app.conn, now_ms(), buf + start, end - start, &used),
                       "input")) {
                app.status = 2;
                break;
            }
            start += used;
        }
    }

    naslink_deinit(app.conn);
    free(mem);
    close(fd);
    return app.status;
}
