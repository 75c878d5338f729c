//! The manifest of Redis 7.0's multi-part AOF: which files make up the
//! log, one per line, `file <name> seq <n> type <b|h|i>` (base, history,
//! incremental), written base first, then history, then the incremental
//! files in order. It is replaced atomically: a temp file, fsync, rename,
//! then an fsync of the directory.

use std::io::Write;
use std::path::Path;

/// One file the manifest names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub seq: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<Info>,
    /// Files retired by a rewrite, not yet deleted.
    pub history: Vec<Info>,
    /// Incremental files, oldest first; the last one is being appended to.
    pub incrs: Vec<Info>,
    /// The highest base and incr sequence numbers used so far.
    pub base_seq: u64,
    pub incr_seq: u64,
}

/// Redis's words for a manifest it cannot read.
pub const INVALID: &str = "Invalid AOF manifest file format";
/// Lines longer than this are refused, as Redis refuses them.
const MAX_LINE: usize = 1024;

impl Manifest {
    pub fn parse(text: &[u8]) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        // Lines end with '\n'; the piece after the last one is no line.
        let body = text.strip_suffix(b"\n").unwrap_or(text);
        if text.is_empty() {
            return Err("Found an empty AOF manifest".into());
        }
        for raw in body.split(|&b| b == b'\n') {
            if raw.len() > MAX_LINE {
                return Err("The AOF manifest file contains too long line".into());
            }
            let line = std::str::from_utf8(raw).map_err(|_| INVALID.to_string())?;
            if line.starts_with('#') {
                continue;
            }
            // A blank line is malformed, as Redis reads it.
            let line = line.trim_matches([' ', '\t', '\r']);
            if line.is_empty() {
                return Err(INVALID.into());
            }
            let (mut buf, mut spans) = (Vec::new(), Vec::new());
            crate::resp::parse::split_args(line.as_bytes(), &mut buf, &mut spans)
                .map_err(|_| INVALID)?;
            let words: Vec<&[u8]> = spans.iter().map(|&(a, b)| &buf[a..b]).collect();
            if !words.len().is_multiple_of(2) {
                return Err(INVALID.into());
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for pair in words.chunks(2) {
                let value = String::from_utf8_lossy(pair[1]).into_owned();
                match pair[0] {
                    b"file" => name = Some(value),
                    b"seq" => seq = value.parse::<u64>().ok(),
                    b"type" => kind = value.chars().next(),
                    // Later versions may add keys: ignored, as Redis does.
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err(INVALID.into());
            };
            if name.contains('/') {
                return Err(format!("File can't be a path, just a filename: {name}"));
            }
            let info = Info { name, seq };
            match kind {
                'b' => {
                    if m.base.is_some() {
                        return Err("Found duplicate base file information".into());
                    }
                    m.base_seq = seq;
                    m.base = Some(info);
                }
                'h' => m.history.push(info),
                'i' => {
                    if seq <= m.incr_seq {
                        return Err("Found a non-monotonic sequence number".into());
                    }
                    m.incr_seq = seq;
                    m.incrs.push(info);
                }
                _ => return Err("Unknown AOF file type".into()),
            }
        }
        if m.base.is_none() && m.incrs.is_empty() {
            return Err("Found an empty AOF manifest".into());
        }
        Ok(m)
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut line = |i: &Info, t: char| {
            s.push_str(&format!(
                "file {} seq {} type {t}\n",
                quoted(&i.name),
                i.seq
            ));
        };
        if let Some(b) = &self.base {
            line(b, 'b');
        }
        for h in &self.history {
            line(h, 'h');
        }
        for i in &self.incrs {
            line(i, 'i');
        }
        s
    }

    /// Names the next base file and retires the current one (and every
    /// incremental file but the last, which the rewrite started) to history.
    pub fn next_base(&mut self, prefix: &str, rdb: bool) -> String {
        self.base_seq += 1;
        let name = format!(
            "{prefix}.{}.base.{}",
            self.base_seq,
            if rdb { "rdb" } else { "aof" }
        );
        // Retired files go to the front, as Redis lists history newest
        // first.
        if let Some(old) = self.base.take() {
            self.history.insert(0, old);
        }
        self.base = Some(Info {
            name: name.clone(),
            seq: self.base_seq,
        });
        name
    }

    /// Moves every incremental file but the last one to history.
    pub fn retire_incrs_but_last(&mut self) {
        let keep = self.incrs.pop();
        self.retire_all_incrs();
        self.incrs.extend(keep);
    }

    /// Moves every incremental file to history, in front of what is there
    /// (the retired ones oldest first, as Redis lists them).
    pub fn retire_all_incrs(&mut self) {
        let retired = std::mem::take(&mut self.incrs);
        self.history.splice(0..0, retired);
    }

    /// Adds a new incremental file and returns its name.
    pub fn next_incr(&mut self, prefix: &str) -> String {
        self.incr_seq += 1;
        let name = format!("{prefix}.{}.incr.aof", self.incr_seq);
        self.incrs.push(Info {
            name: name.clone(),
            seq: self.incr_seq,
        });
        name
    }

    /// Writes the manifest as `dir/name` atomically.
    pub fn persist(&self, dir: &Path, name: &str) -> std::io::Result<()> {
        write_atomically(dir, name, self.render().as_bytes())
    }
}

/// A name with spaces or odd bytes is written quoted, as Redis does.
fn quoted(name: &str) -> String {
    if name
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\')
    {
        return name.to_string();
    }
    let mut s = String::from("\"");
    for c in name.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c.is_control() => s.push_str(&format!("\\x{:02x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// `dir/temp-<name>`, fsynced, renamed over `dir/name`, then `dir` fsynced.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("temp-{name}"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    fsync_dir(dir)
}

pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_redis_lines() {
        let text = b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.1.base.rdb");
        assert_eq!(m.incrs.len(), 1);
        assert_eq!(m.render().as_bytes(), text);
    }

    #[test]
    fn a_rewrite_retires_the_old_files() {
        let mut m = Manifest::default();
        m.next_base("a.aof", false);
        m.next_incr("a.aof");
        m.next_incr("a.aof");
        m.next_base("a.aof", false);
        m.retire_incrs_but_last();
        // Newest retirement first, as Redis lists history.
        assert_eq!(
            m.render(),
            "file a.aof.2.base.aof seq 2 type b\nfile a.aof.1.incr.aof seq 1 type h\nfile a.aof.1.base.aof seq 1 type h\nfile a.aof.2.incr.aof seq 2 type i\n"
        );
        // Several incremental files retire oldest first, in front.
        m.next_incr("a.aof");
        m.next_incr("a.aof");
        m.next_base("a.aof", false);
        m.retire_incrs_but_last();
        assert_eq!(
            m.render(),
            "file a.aof.3.base.aof seq 3 type b\n\
             file a.aof.2.incr.aof seq 2 type h\nfile a.aof.3.incr.aof seq 3 type h\n\
             file a.aof.2.base.aof seq 2 type h\n\
             file a.aof.1.incr.aof seq 1 type h\nfile a.aof.1.base.aof seq 1 type h\n\
             file a.aof.4.incr.aof seq 4 type i\n"
        );
    }

    #[test]
    fn refuses_bad_lines() {
        assert!(Manifest::parse(b"file x seq 1\n").is_err());
        assert!(Manifest::parse(b"file x seq 1 type b\nfile y seq 2 type b\n").is_err());
        assert!(Manifest::parse(b"file ../x seq 1 type i\n").is_err());
    }
}
