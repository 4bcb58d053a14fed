//! The real binary in a pseudo-terminal on a copy of `examples/`: it starts, draws the
//! tree, takes keys, follows an edit on disk, and gives the terminal back when it quits.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::copy_dir;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// Long enough for a slow CI machine; the test fails, naming what it waited for, after it.
const PATIENCE: Duration = Duration::from_secs(30);

struct Terminal {
    screen: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Terminal {
    fn start(dir: &Path) -> Self {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 30,
                cols: 110,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_nauthera-tui"));
        command.arg("--manifests");
        command.arg(dir);
        command.env("TERM", "xterm-256color");
        command.env("NO_COLOR", "1");
        let child = pty
            .slave
            .spawn_command(command)
            .expect("nauthera-tui starts");
        drop(pty.slave);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZero::new(30).unwrap(),
            std::num::NonZero::new(110).unwrap(),
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

    fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    fn wait_for(&self, text: &str) {
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

    fn send(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }
}

#[test]
fn the_dashboard_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples"),
        dir.path(),
    );
    let mut terminal = Terminal::start(dir.path());

    terminal.wait_for("security/production-server");
    terminal.wait_for("20 clients 10 ✔ 1 ⚠ 9 ✖");

    // Filter to the non-compliant clients, then clear the filter.
    terminal.send("/state:non-compliant\r");
    terminal.wait_for("filter: state:non-compliant");
    assert!(!terminal.contents().contains("shop/storefront"));
    terminal.send("\x1b");
    terminal.wait_for("shop/storefront");

    // The help overlay lists the keys.
    terminal.send("?");
    terminal.wait_for("Keys (esc closes)");
    terminal.send("?");

    // An edit on disk shows up without a key: the admin client drops the forbidden scope.
    let file = dir.path().join("teams/my-app-dev/admin-client.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace(
            r#"scopes: [openid, profile, "api:write"]"#,
            "scopes: [openid, profile]",
        ),
    )
    .unwrap();
    terminal.wait_for("20 clients 11 ✔ 1 ⚠ 8 ✖");

    terminal.send("q");
    let start = Instant::now();
    loop {
        if let Some(status) = terminal.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "q did not quit:\n{}",
            terminal.contents()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let screen = terminal.screen.lock().unwrap();
    assert!(
        !screen.screen().alternate_screen(),
        "the terminal is given back"
    );
}
