//! Build log files in `logs/`: written plain while the build runs (`<id>.log`), compressed
//! with zstd once it finished (`<id>.log.zst`), removed by the retention policy.
//!
//! Every step leaves each log whole or gone, whatever kills the process between two system
//! calls: compression writes `<id>.log.zst.partial`, syncs it, renames it to `<id>.log.zst`
//! (atomic) and only then removes `<id>.log`; readers prefer the `.zst` when both exist, and
//! the next prune removes the leftovers (a `.partial`, or a plain log beside its `.zst`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// zstd level for finished logs: build output compresses about 8 to 15 times at level 3,
/// at a few hundred MB/s on one core (the zstd default).
const LEVEL: i32 = 3;

/// Suffix of a compressed log (after `<id>.log`).
pub const ZST: &str = ".zst";
/// Suffix of a compressed log being written (after `<id>.log.zst`).
pub const PARTIAL: &str = ".partial";

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The compressed twin of a plain log path (`…/<id>.log` -> `…/<id>.log.zst`).
pub fn compressed(plain: &Path) -> PathBuf {
    with_suffix(plain, ZST)
}

/// The build id a log path names (`…/<id>.log` or `…/<id>.log.zst`), if it is one.
pub fn id_of(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(ZST).unwrap_or(name);
    stem.strip_suffix(".log")?.parse().ok()
}

/// Where a log is now: its compressed file if there is one, else the plain one; None when
/// neither exists.
pub fn existing(plain: &Path) -> Option<PathBuf> {
    let z = compressed(plain);
    if z.exists() {
        Some(z)
    } else if plain.exists() {
        Some(plain.to_path_buf())
    } else {
        None
    }
}

/// A reader of a log's text, decompressing when it is stored compressed.
/// Errors: the file system's (NotFound when neither file exists).
pub fn open(plain: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    let z = compressed(plain);
    match std::fs::File::open(&z) {
        Ok(f) => Ok(Box::new(zstd::stream::read::Decoder::new(f)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Box::new(std::fs::File::open(plain)?))
        }
        Err(e) => Err(e),
    }
}

/// Copy a log's text to `out` (decompressing); returns the bytes written.
pub fn copy_to(plain: &Path, out: &mut dyn Write) -> std::io::Result<u64> {
    let mut r = open(plain)?;
    std::io::copy(&mut r, out)
}

/// Compress a finished log in place (see the module doc for why a crash leaves it whole).
/// Returns (bytes before, bytes after); (0, 0) when there was no plain log to compress.
/// Never call it on a log still being written.
pub fn compress(plain: &Path) -> std::io::Result<(u64, u64)> {
    let z = compressed(plain);
    let src = match std::fs::File::open(plain) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e),
    };
    let before = src.metadata()?.len();
    if z.exists() {
        // A crash after the rename: the compressed copy is the whole log.
        std::fs::remove_file(plain)?;
        return Ok((before, std::fs::metadata(&z)?.len()));
    }
    let tmp = with_suffix(&z, PARTIAL);
    let write = || -> std::io::Result<u64> {
        let out = std::fs::File::create(&tmp)?;
        let mut enc = zstd::stream::write::Encoder::new(out, LEVEL)?;
        std::io::copy(&mut std::io::BufReader::new(src), &mut enc)?;
        let out = enc.finish()?;
        out.sync_all()?;
        out.metadata().map(|m| m.len())
    };
    let after = match write() {
        Ok(n) => n,
        Err(e) => {
            // A full disk, say: the plain log stays whole, the partial goes.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &z)?;
    sync_dir(plain);
    std::fs::remove_file(plain)?;
    Ok((before, after))
}

/// Remove a log (both forms and any partial). Returns the bytes freed.
pub fn remove(plain: &Path) -> std::io::Result<u64> {
    let z = compressed(plain);
    let mut freed = 0;
    for p in [with_suffix(&z, PARTIAL), z, plain.to_path_buf()] {
        match std::fs::metadata(&p) {
            Ok(m) => {
                std::fs::remove_file(&p)?;
                freed += m.len();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(freed)
}

/// Bytes a log holds on disk now (both forms; 0 when gone).
pub fn disk_bytes(plain: &Path) -> u64 {
    [compressed(plain), plain.to_path_buf()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Make a rename durable (best effort: some file systems cannot sync a directory).
fn sync_dir(file: &Path) {
    if let Some(d) = file.parent() {
        if let Ok(f) = std::fs::File::open(d) {
            let _ = f.sync_all();
        }
    }
}

/// The last `max_bytes` of a log's text as lines, and how many lines came before them,
/// reading through it once (a compressed log is decompressed as a stream, never whole).
/// Errors: the file system's (NotFound when neither form exists).
pub fn tail(plain: &Path, max_bytes: u64) -> std::io::Result<(Vec<String>, u64)> {
    use std::io::{Seek, SeekFrom};
    let max = max_bytes as usize;
    let mut skipped = 0u64;
    let text: Vec<u8> = if compressed(plain).exists() || !plain.exists() {
        let mut r = open(plain)?;
        // A window of at most 2 * max bytes: when full, the older half's lines are counted
        // and dropped.
        let mut win: Vec<u8> = Vec::with_capacity(max.min(1 << 20) * 2);
        let mut buf = vec![0u8; 64 * 1024];
        let mut dropped_any = false;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            win.extend_from_slice(&buf[..n]);
            if win.len() > 2 * max.max(1) {
                let cut = win.len() - max;
                skipped += win[..cut].iter().filter(|b| **b == b'\n').count() as u64;
                win.drain(..cut);
                dropped_any = true;
            }
        }
        if win.len() > max {
            let cut = win.len() - max;
            skipped += win[..cut].iter().filter(|b| **b == b'\n').count() as u64;
            win.drain(..cut);
            dropped_any = true;
        }
        return Ok(split_tail(&win, dropped_any, skipped));
    } else {
        let mut f = std::fs::File::open(plain)?;
        let len = f.metadata()?.len();
        let start = len.saturating_sub(max_bytes);
        if start > 0 {
            // Count the lines before the tail without holding them.
            let mut head = std::io::BufReader::new(f.try_clone()?).take(start);
            let mut buf = [0u8; 64 * 1024];
            loop {
                let n = head.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                skipped += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
            }
        }
        f.seek(SeekFrom::Start(start))?;
        let mut text = Vec::new();
        f.read_to_end(&mut text)?;
        if start > 0 {
            return Ok(split_tail(&text, true, skipped));
        }
        text
    };
    Ok(split_tail(&text, false, skipped))
}

/// Lines of a tail; a cut tail's partial first line counts as skipped.
fn split_tail(text: &[u8], cut: bool, mut skipped: u64) -> (Vec<String>, u64) {
    let text = String::from_utf8_lossy(text);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if cut && !lines.is_empty() {
        lines.remove(0);
        skipped += 1;
    }
    (lines, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_text(lines: usize) -> String {
        (0..lines)
            .map(|i| format!("line {i}: ocamlfind ocamlopt -c src/m{i}.ml\n"))
            .collect()
    }

    #[test]
    fn a_compressed_log_reads_the_same_and_is_smaller() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("7.log");
        let text = log_text(5000);
        std::fs::write(&plain, &text).unwrap();
        let before_tail = tail(&plain, 1000).unwrap();
        let (b, a) = compress(&plain).unwrap();
        assert_eq!(b, text.len() as u64);
        assert!(a * 5 < b, "{a} of {b}");
        assert!(!plain.exists());
        assert_eq!(existing(&plain), Some(compressed(&plain)));
        let mut out = Vec::new();
        copy_to(&plain, &mut out).unwrap();
        assert_eq!(out, text.as_bytes());
        assert_eq!(tail(&plain, 1000).unwrap(), before_tail);
        assert_eq!(
            tail(&plain, 1 << 30).unwrap(),
            (text.lines().map(str::to_string).collect(), 0)
        );
        assert_eq!(id_of(&compressed(&plain)), Some(7));
        assert_eq!(remove(&plain).unwrap(), a);
        assert_eq!(existing(&plain), None);
        assert_eq!(
            tail(&plain, 10).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }

    #[test]
    fn a_crash_after_the_rename_finishes_on_the_next_compress() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("8.log");
        std::fs::write(&plain, log_text(100)).unwrap();
        // The state a kill between rename and remove leaves: both forms, whole.
        compress(&plain).unwrap();
        std::fs::write(&plain, log_text(100)).unwrap();
        let mut out = Vec::new();
        copy_to(&plain, &mut out).unwrap();
        assert_eq!(out, log_text(100).as_bytes());
        compress(&plain).unwrap();
        assert!(!plain.exists());
        // A partial left by a kill mid-write is never read, and goes with the log.
        std::fs::write(with_suffix(&compressed(&plain), PARTIAL), b"half").unwrap();
        let mut out = Vec::new();
        copy_to(&plain, &mut out).unwrap();
        assert_eq!(out, log_text(100).as_bytes());
        remove(&plain).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
