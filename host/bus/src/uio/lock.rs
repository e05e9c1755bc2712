//! One daemon per device: an exclusive `flock` on the device file, held for as long
//! as the file is open. A second daemon gets [`UioError::Busy`] naming the holder.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::UioError;

/// Takes the exclusive lock without waiting.
pub(crate) fn lock_exclusive(file: &File, node: &Path, proc: &Path) -> Result<(), UioError> {
    loop {
        // SAFETY: flock on a descriptor that `file` keeps open; no pointers involved.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => {
                return Err(UioError::Busy {
                    node: node.into(),
                    holder: holder(file, proc)
                        .map(|(pid, comm)| format!(" by pid {pid} ({comm})"))
                        .unwrap_or_default(),
                })
            }
            _ => return Err(UioError::io("cannot lock", node, e)),
        }
    }
}

/// The process holding a lock on `file`, from `/proc/locks` (pid and command name).
fn holder(file: &File, proc: &Path) -> Option<(u32, String)> {
    let meta = file.metadata().ok()?;
    let dev = meta.dev();
    let want = format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        meta.ino()
    );
    let locks = std::fs::read_to_string(proc.join("locks")).ok()?;
    // "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"
    let pid = locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&want.as_str()))
            .then(|| f.get(4)?.parse::<u32>().ok())
            .flatten()
    })?;
    let comm = std::fs::read_to_string(proc.join(format!("{pid}/comm")))
        .map(|c| c.trim_end().to_owned())
        .unwrap_or_else(|_| "?".into());
    Some((pid, comm))
}

/// Processes other than this one holding `node` open, from `/proc/<pid>/fd` (pid and
/// command name): a notebook using PYNQ's `Interrupt` holds the `fabric` device so.
/// Processes this user may not look into are not seen.
pub fn openers(node: &Path, proc: &Path) -> Vec<(u32, String)> {
    let me = std::process::id();
    let Ok(want) = std::fs::canonicalize(node) else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == want));
        if holds {
            let comm = std::fs::read_to_string(entry.path().join("comm"))
                .map(|c| c.trim_end().to_owned())
                .unwrap_or_else(|_| "?".into());
            out.push((pid, comm));
        }
    }
    out
}
