//! An X server's cookie: from the file its own command line names (`-auth`), read only when
//! that is a regular file of the session's user — never opened as root before that is
//! known ([`files::open_verified`]).

use std::io::Read;
use std::path::PathBuf;

use rustix::fs::FileType;

use crate::model::{Pid, Uid};
use crate::system::files::{self, Expect, Owner};

/// The largest Xauthority file read.
const MAX: u64 = 64 * 1024;

/// The file the X server's command line names with `-auth`, as this host can open it (a
/// relative name is the server's working directory's). The command line is read from the
/// server's memory: the caller bounds the wait.
pub fn auth_file(pid: Pid) -> Option<PathBuf> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args = cmdline.split(|&b| b == 0);
    args.find(|a| *a == b"-auth")?;
    let name = PathBuf::from(String::from_utf8(args.next()?.to_vec()).ok()?);
    if name.is_absolute() {
        return Some(name);
    }
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    Some(cwd.join(name))
}

/// The MIT-MAGIC-COOKIE-1 for display `number` from an Xauthority file, read only when it
/// is a regular file of `owner` (not through a last link), at most 64 KiB.
pub fn read_cookie(path: &std::path::Path, number: u32, owner: Uid) -> Option<(Vec<u8>, Vec<u8>)> {
    let expect = Expect {
        kind: FileType::RegularFile,
        owner: Owner::Exactly(owner.as_raw()),
        private_writes: false,
        max_size: MAX,
    };
    let file = files::open_verified(path, &expect).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX).read_to_end(&mut bytes).ok()?;
    find_cookie(&bytes, &number.to_string())
}

/// Parses Xauthority entries (big-endian lengths: family, address, number, name, data).
pub fn find_cookie(mut b: &[u8], number: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    fn field<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = usize::from(u16::from_be_bytes(b.get(..2)?.try_into().ok()?));
        let value = b.get(2..2 + len)?;
        *b = &b[2 + len..];
        Some(value)
    }
    while b.len() >= 2 {
        b = b.get(2..)?; // family
        let (_address, num, name, data) = (
            field(&mut b)?,
            field(&mut b)?,
            field(&mut b)?,
            field(&mut b)?,
        );
        if num == number.as_bytes() && name == b"MIT-MAGIC-COOKIE-1" {
            return Some((name.to_vec(), data.to_vec()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_by_display_number() {
        let entry = |num: &str, name: &[u8], data: &[u8]| {
            let mut e = vec![1, 0]; // FamilyLocal
            for f in [b"host".as_slice(), num.as_bytes(), name, data] {
                e.extend_from_slice(&u16::try_from(f.len()).expect("short").to_be_bytes());
                e.extend_from_slice(f);
            }
            e
        };
        let mut file = entry("9", b"MIT-MAGIC-COOKIE-1", b"nine");
        file.extend(entry("10", b"XDM-AUTHORIZATION-1", b"other"));
        file.extend(entry("10", b"MIT-MAGIC-COOKIE-1", b"ten"));
        assert_eq!(
            find_cookie(&file, "10"),
            Some((b"MIT-MAGIC-COOKIE-1".to_vec(), b"ten".to_vec()))
        );
        assert_eq!(find_cookie(&file, "11"), None);
        assert_eq!(find_cookie(&file[..7], "9"), None);
    }
}
