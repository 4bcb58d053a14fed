//! The real binary in a pseudo-terminal, its screen kept by a terminal emulator, for the
//! tests that drive `nauthera-tui` as a user would.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// Long enough for a slow CI machine; a test fails, naming what it waited for, after it.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Terminal {
    pub screen: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Terminal {
    /// Starts `nauthera-tui` with `args` and `env` in a `rows` × `cols` terminal.
    pub fn start(
        args: &[&std::ffi::OsStr],
        env: &[(&str, &std::ffi::OsStr)],
        rows: u16,
        cols: u16,
    ) -> Self {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_nauthera-tui"));
        command.args(args);
        command.env("TERM", "xterm-256color");
        command.env("NO_COLOR", "1");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = pty
            .slave
            .spawn_command(command)
            .expect("nauthera-tui starts");
        drop(pty.slave);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZero::new(rows).unwrap(),
            std::num::NonZero::new(cols).unwrap(),
            0,
        )));
        let mut reader = pty.master.try_clone_reader().unwrap();
        let parser = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(read) = reader.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                parser.lock().unwrap().process(&buffer[..read]);
            }
        });
        let writer = pty.master.take_writer().unwrap();
        // Keep the master open for the child's lifetime.
        std::mem::forget(pty.master);
        Self {
            screen,
            writer,
            child,
        }
    }

    pub fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits until the screen shows `text`; fails with the screen after [`PATIENCE`].
    pub fn wait_for(&self, text: &str) {
        let start = Instant::now();
        while start.elapsed() < PATIENCE {
            if self.contents().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "waited for {text:?}; the screen shows:\n{}",
            self.contents()
        );
    }

    pub fn send(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Sends `q` and waits for a clean exit with the terminal given back.
    pub fn quit(&mut self) {
        self.send("q");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status:?}");
                break;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "q did not quit:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        let screen = self.screen.lock().unwrap();
        assert!(
            !screen.screen().alternate_screen(),
            "the terminal is given back"
        );
    }
}
