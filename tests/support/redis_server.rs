//! A `redis-server` of the test's own, which the test kills, restarts (empty: no persistence)
//! and pauses (`SIGSTOP` / `SIGCONT`). Needs `redis-server` on the PATH (scripts/faults and
//! scripts/stores install it).
#![allow(dead_code)] // each test binary uses a part

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: std::path::PathBuf,
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl RedisServer {
    /// Starts one on a free port of 127.0.0.1.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "authed-redis-{}-{}",
            std::process::id(),
            oauth2::CsrfToken::new_random().secret()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for _ in 0..50 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut server = RedisServer {
                port,
                child: None,
                dir: dir.clone(),
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start redis-server");
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed (scripts/faults installs it)");
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if ping(self.port) {
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is running").id()
    }

    /// `SIGKILL`: everything it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        let started = Instant::now();
        while !self.spawn() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "redis-server did not come back on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `SIGSTOP`: connections stay open, nothing is answered.
    pub fn pause(&self) {
        signal(self.pid(), "-STOP");
    }

    /// `SIGCONT`.
    pub fn resume(&self) {
        signal(self.pid(), "-CONT");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
