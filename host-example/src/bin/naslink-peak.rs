//! `naslink-peak`: run a command, kill it after a limit, and write its
//! exit status, wall time and peak memory to a file as one JSON document.
//!
//! ```text
//! naslink-peak REPORT KILL_AFTER_SECS COMMAND [ARGS...]
//! ```
//!
//! Why a program of its own: Linux reports as a child's `ru_maxrss` the
//! larger of its own peak and the peak of the process image it replaced at
//! `exec`, which for a child spawned straight from a large test process is
//! that test process. This small, freshly started program is the parent
//! instead, so the figure is the command's own. The command inherits
//! standard input, output and error.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [report, limit, program, rest @ ..] = args.as_slice() else {
        eprintln!("usage: naslink-peak REPORT KILL_AFTER_SECS COMMAND [ARGS...]");
        return ExitCode::from(2);
    };
    let Ok(limit) = limit.parse::<f64>().map(Duration::try_from_secs_f64) else {
        eprintln!("naslink-peak: {limit} is not a number of seconds");
        return ExitCode::from(2);
    };
    let Ok(limit) = limit else {
        eprintln!("naslink-peak: the limit is out of range");
        return ExitCode::from(2);
    };
    match measure(program, rest, limit) {
        Ok(json) => match std::fs::write(report, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("naslink-peak: cannot write {report}: {e}");
                ExitCode::from(3)
            }
        },
        Err(e) => {
            eprintln!("naslink-peak: {program}: {e}");
            ExitCode::from(3)
        }
    }
}

/// Run `program` to its end (killed after `limit`) and describe the run.
fn measure(program: &str, args: &[String], limit: Duration) -> std::io::Result<String> {
    let start = Instant::now();
    let mut child = Command::new(program).args(args).spawn()?;
    let pid = libc::pid_t::try_from(child.id()).map_err(std::io::Error::other)?;
    let mut killed = false;
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data for which all-zero bytes are valid.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is this program's own unreaped child, and both
        // pointers are valid for the call.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if reaped == pid {
            let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
            let signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
            return Ok(format!(
                "{{\"code\":{},\"signal\":{},\"elapsed_ms\":{},\"peak_rss_kib\":{},\"killed\":{killed}}}",
                json_number(code),
                json_number(signal),
                start.elapsed().as_millis(),
                usage.ru_maxrss
            ));
        }
        if start.elapsed() > limit && !killed {
            // Not reaped yet, so the pid is still this child's.
            child.kill()?;
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn json_number(n: Option<i32>) -> String {
    n.map_or_else(|| "null".to_owned(), |n| n.to_string())
}
