//! Streaming masking: every occurrence of a secret value in a byte stream becomes
//! `<keygate:NAME>`, as the bytes come, whatever the read boundaries.
//!
//! The rule, for a whole stream: the leftmost occurrence of any value is found, the longest
//! one starting there; it becomes its marker. If another occurrence starts inside it and
//! runs past its end (values that overlap in the text, such as `abcd` and `cdef` in
//! `abcdef`), the masked region grows to cover it too, and so on: no byte of any occurrence
//! is ever let through. A region is written as the markers of the occurrences that built
//! it, a marker repeated back to back written once (`aaaa` with the value `aa` is one
//! `<keygate:NAME>`). Then the search goes on after the region.
//!
//! Streaming: after each read, everything that can no longer be part of an occurrence is
//! written out at once. What is held back is only a tail that is a proper prefix of some
//! value (at most the longest value's length less one byte), plus, while a region may
//! still grow, the bytes it needs to decide. So a prompt is shown as soon as it is read,
//! unless its last bytes could begin a secret.
//!
//! Line endings: a value that holds a line break is also masked in the forms a terminal's
//! output processing gives it, since a child under a pty can turn that on (`stty opost
//! onlcr`): `\n` written as `\r\n` (`onlcr`), `\r` written as `\n` (`ocrnl`), and both.
//! Each form is one more pattern with the value's marker; nothing else changes.
//!
//! Speed: the search is Aho-Corasick (leftmost-longest) with its SIMD prefilter, so text
//! without secrets moves at memchr-like speed; `examples/mask_bench.rs` measures it.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};

use aho_corasick::{AhoCorasick, BuildError, Input, MatchKind};
use zeroize::Zeroize as _;

/// How much [`pump`] reads at a time.
pub const CHUNK: usize = 64 * 1024;

/// Where reads start in the masker's buffer: a cache line.
const ALIGN: usize = 64;

/// A streaming masker for one output stream. Feed it with [`Masker::push`] (or read
/// straight into [`Masker::spare`] and [`Masker::commit`]), end with [`Masker::finish`].
pub struct Masker {
    engine: Option<Engine>,
    /// Bytes read and not yet written out, from index 0 to `end`.
    buf: Vec<u8>,
    end: usize,
    /// Everything before `start` has been written out or masked.
    start: usize,
    /// While a masked region may still grow: where the next overlapping occurrence may
    /// start (one past the start of the occurrence that ends at `start`).
    region: Option<usize>,
    /// The marker written last in the current region, so repeats are written once.
    last: Option<usize>,
    /// What the last call let out, as ranges of `buf` and markers: written straight
    /// from `buf`, so text without secrets is never copied.
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(usize, usize),
    Marker(usize),
}

struct Engine {
    /// Finds the leftmost-longest occurrence.
    leftmost: AhoCorasick,
    /// Finds every occurrence, overlapping ones too: only used near a match.
    overlapping: AhoCorasick,
    /// What is searched for: every value, and its line-ending forms.
    values: Vec<Vec<u8>>,
    /// The marker of each of `values`.
    marker_of: Vec<usize>,
    markers: Vec<Vec<u8>>,
    /// Whether a byte begins some value: most bytes of a tail are dismissed by this.
    first: [bool; 256],
    max_len: usize,
}

impl Masker {
    /// A masker for these `(name, value)` pairs. Empty values are not masked; a value
    /// given under two names is masked with the first name. A value with a line break is
    /// masked in its terminal forms too (see the module's doc).
    pub fn new<'a>(
        secrets: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, BuildError> {
        let mut values: Vec<Vec<u8>> = Vec::new();
        let mut marker_of = Vec::new();
        let mut markers = Vec::new();
        let mut given: Vec<&[u8]> = Vec::new();
        for (name, value) in secrets {
            if value.is_empty() || given.contains(&value) {
                continue;
            }
            given.push(value);
            let marker = markers.len();
            markers.push(format!("<keygate:{name}>").into_bytes());
            for form in std::iter::once(value.to_vec()).chain(line_ending_forms(value)) {
                if values.contains(&form) {
                    continue; // an earlier value's, or another form of this one
                }
                values.push(form);
                marker_of.push(marker);
            }
        }
        let engine = if values.is_empty() {
            None
        } else {
            let leftmost = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&values)?;
            let overlapping = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&values)?;
            let mut first = [false; 256];
            for v in &values {
                first[usize::from(v[0])] = true;
            }
            let max_len = values.iter().map(Vec::len).max().unwrap_or(1);
            Some(Engine {
                leftmost,
                overlapping,
                values,
                marker_of,
                markers,
                first,
                max_len,
            })
        };
        Ok(Self {
            engine,
            buf: Vec::new(),
            end: 0,
            start: 0,
            region: None,
            last: None,
            pieces: Vec::new(),
        })
    }

    /// Whether this masker masks anything at all (false when every value is empty).
    pub fn is_active(&self) -> bool {
        self.engine.is_some()
    }

    /// Masks `data` and appends what can be written now to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            let spare = self.spare();
            let n = spare.len().min(data.len());
            spare[..n].copy_from_slice(&data[..n]);
            data = &data[n..];
            self.commit(n, out);
        }
    }

    /// Room for the next read (at least [`CHUNK`] bytes): read into it, then [`commit`]
    /// the count. Saves copying the input once.
    ///
    /// [`commit`]: Masker::commit
    pub fn spare(&mut self) -> &mut [u8] {
        self.compact();
        if self.buf.len() < self.end + CHUNK {
            self.buf.resize(self.end + CHUNK + ALIGN, 0);
            self.compact(); // the buffer may have moved
        }
        &mut self.buf[self.end..]
    }

    /// Takes `n` bytes just read into [`Masker::spare`]; appends what can be written now.
    pub fn commit(&mut self, n: usize, out: &mut Vec<u8>) {
        self.take(n, false);
        self.gather(out);
    }

    /// Like [`Masker::commit`], but writes what can be written now to `to`, straight from
    /// the masker's buffer when it holds no secret.
    pub fn commit_to(&mut self, n: usize, to: &mut impl Write) -> io::Result<()> {
        self.take(n, false);
        self.write_pieces(to)
    }

    /// The stream ended: appends everything still held (a held tail that never became
    /// a whole value is written as it is). The masker can then be used again.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.take(0, true);
        self.gather(out);
        self.reset();
    }

    /// Like [`Masker::finish`], writing to `to`.
    pub fn finish_to(&mut self, to: &mut impl Write) -> io::Result<()> {
        self.take(0, true);
        let written = self.write_pieces(to);
        self.reset();
        written
    }

    fn take(&mut self, n: usize, eof: bool) {
        assert!(self.end + n <= self.buf.len(), "commit past the spare room");
        self.end += n;
        self.pieces.clear();
        self.process(eof);
    }

    fn reset(&mut self) {
        self.buf[..self.end].zeroize();
        self.end = 0;
        self.start = 0;
        self.region = None;
        self.last = None;
        self.pieces.clear();
    }

    fn piece(&self, p: &Piece) -> &[u8] {
        match (p, &self.engine) {
            (Piece::Text(a, b), _) => &self.buf[*a..*b],
            (Piece::Marker(i), Some(e)) => &e.markers[*i],
            (Piece::Marker(_), None) => &[],
        }
    }

    fn gather(&self, out: &mut Vec<u8>) {
        for p in &self.pieces {
            out.extend_from_slice(self.piece(p));
        }
    }

    fn write_pieces(&self, to: &mut impl Write) -> io::Result<()> {
        match self.pieces.as_slice() {
            [] => return Ok(()),
            [one] => to.write_all(self.piece(one))?,
            many => {
                // Text and markers in one system call, nothing copied.
                let mut slices: Vec<IoSlice<'_>> =
                    many.iter().map(|p| IoSlice::new(self.piece(p))).collect();
                let mut left = &mut slices[..];
                while !left.is_empty() {
                    match to.write_vectored(left) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => IoSlice::advance_slices(&mut left, n),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        to.flush()
    }

    fn text(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        if let Some(Piece::Text(_, end)) = self.pieces.last_mut()
            && *end == a
        {
            *end = b;
            return;
        }
        self.pieces.push(Piece::Text(a, b));
    }

    /// Drops what no decision needs any more, moving the rest to the front, placed so
    /// that the next read starts on an [`ALIGN`] boundary: the kernel copies a pipe's
    /// pages into aligned memory at twice the speed.
    fn compact(&mut self) {
        let keep = self.region.unwrap_or(self.start).min(self.start);
        let kept = self.end - keep;
        let base = self.buf.as_ptr().addr() % ALIGN;
        let to = (ALIGN - (base + kept) % ALIGN) % ALIGN;
        if to == keep || to + kept > self.buf.len() {
            return;
        }
        self.buf.copy_within(keep..self.end, to);
        self.end = self.end - keep + to;
        self.start = self.start - keep + to;
        self.region = self.region.map(|r| r - keep + to);
    }

    fn process(&mut self, eof: bool) {
        let len = self.end;
        let Some(e) = &self.engine else {
            self.text(self.start, len);
            self.start = len;
            return;
        };
        // Every occurrence that starts before `hold` lies wholly inside the buffer.
        let hold = if eof { len } else { e.hold(&self.buf[..len]) };
        loop {
            let Some(e) = &self.engine else { return };
            let data = &self.buf[..len];
            if let Some(from) = self.region {
                // Does an occurrence start inside the region and run past its end?
                if hold < self.start {
                    break; // not decidable yet
                }
                let window = len.min(self.start - 1 + e.max_len);
                let start = self.start;
                let next = e
                    .overlapping
                    .find_overlapping_iter(&data[from..window])
                    .filter(|m| from + m.start() < start && from + m.end() > start)
                    .max_by_key(|m| (m.end(), std::cmp::Reverse(m.start())));
                if let Some(m) = next {
                    let p = e.marker_of[m.pattern().as_usize()];
                    if self.last != Some(p) {
                        self.pieces.push(Piece::Marker(p));
                    }
                    self.last = Some(p);
                    self.region = Some(from + m.start() + 1);
                    self.start = from + m.end();
                } else {
                    self.region = None;
                    self.last = None;
                }
                continue;
            }
            match e.leftmost.find(Input::new(data).span(self.start..len)) {
                Some(m) if m.start() < hold => {
                    let p = e.marker_of[m.pattern().as_usize()];
                    self.text(self.start, m.start());
                    self.pieces.push(Piece::Marker(p));
                    self.last = Some(p);
                    self.region = Some(m.start() + 1);
                    self.start = m.end();
                }
                _ => {
                    let upto = hold.max(self.start);
                    self.text(self.start, upto);
                    self.start = upto;
                    break;
                }
            }
        }
    }
}

/// The forms a terminal's output processing gives a value that holds a line break, other
/// than the value itself: `onlcr` (`\n` → `\r\n`), `ocrnl` (`\r` → `\n`), and both
/// (`ocrnl` first, as the kernel applies them: every `\r` and `\n` → `\r\n`). A value
/// without `\r` or `\n` has none.
fn line_ending_forms(value: &[u8]) -> Vec<Vec<u8>> {
    if !value.iter().any(|&b| b == b'\n' || b == b'\r') {
        return Vec::new();
    }
    let map = |f: &dyn Fn(u8, &mut Vec<u8>)| {
        let mut out = Vec::with_capacity(value.len() * 2);
        for &b in value {
            f(b, &mut out);
        }
        out
    };
    let onlcr = map(&|b, out| match b {
        b'\n' => out.extend_from_slice(b"\r\n"),
        b => out.push(b),
    });
    let ocrnl = map(&|b, out| out.push(if b == b'\r' { b'\n' } else { b }));
    let both = map(&|b, out| match b {
        b'\n' | b'\r' => out.extend_from_slice(b"\r\n"),
        b => out.push(b),
    });
    let mut forms: Vec<Vec<u8>> = Vec::new();
    for f in [onlcr, ocrnl, both] {
        if f != value && !forms.contains(&f) {
            forms.push(f);
        }
    }
    forms
}

impl Engine {
    /// The first index from which `data`'s tail is a proper prefix of some value (a
    /// value that may be completed by the next read); `data.len()` when there is none.
    fn hold(&self, data: &[u8]) -> usize {
        let len = data.len();
        for q in (len + 1).saturating_sub(self.max_len)..len {
            if !self.first[usize::from(data[q])] {
                continue;
            }
            let tail = &data[q..];
            if self
                .values
                .iter()
                .any(|v| v.len() > tail.len() && v.starts_with(tail))
            {
                return q;
            }
        }
        len
    }
}

impl Drop for Masker {
    fn drop(&mut self) {
        self.buf.zeroize();
        if let Some(e) = &mut self.engine {
            for v in &mut e.values {
                v.zeroize();
            }
        }
    }
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field(
                "values",
                &self.engine.as_ref().map_or(0, |e| e.markers.len()),
            )
            .field("held", &(self.end - self.start))
            .finish_non_exhaustive()
    }
}

/// Copies `from` to `to` until `from` ends, through `masker` when there is one, writing
/// (and flushing) after every read. Returns the bytes read. A write error ends the copy
/// (the reader is then dropped by the caller, so the writer upstream sees a broken pipe).
pub fn pump(
    mut from: impl Read,
    mut to: impl Write,
    masker: Option<&mut Masker>,
) -> io::Result<u64> {
    let mut total = 0u64;
    match masker {
        None => {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                total += n as u64;
                to.write_all(&buf[..n])?;
                to.flush()?;
            }
        }
        Some(masker) => {
            loop {
                let n = match from.read(masker.spare()) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                total += n as u64;
                masker.commit_to(n, &mut to)?;
            }
            masker.finish_to(&mut to)?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn masker(secrets: &[(&str, &str)]) -> Masker {
        Masker::new(secrets.iter().map(|(n, v)| (*n, v.as_bytes()))).expect("masker")
    }

    /// Masks `input` fed in the given chunk sizes (cycled).
    fn stream(secrets: &[(&str, &str)], input: &[u8], chunks: &[usize]) -> Vec<u8> {
        let mut m = masker(secrets);
        let mut out = Vec::new();
        let mut rest = input;
        let mut i = 0;
        while !rest.is_empty() {
            let n = chunks[i % chunks.len()].clamp(1, rest.len());
            m.push(&rest[..n], &mut out);
            rest = &rest[n..];
            i += 1;
        }
        m.finish(&mut out);
        out
    }

    /// The rule in the module's doc, written the slow and obvious way, on a whole input.
    fn oracle(secrets: &[(&str, &str)], input: &[u8]) -> Vec<u8> {
        let mut vals: Vec<(&[u8], String)> = Vec::new();
        for (n, v) in secrets {
            if !v.is_empty() && !vals.iter().any(|(x, _)| *x == v.as_bytes()) {
                vals.push((v.as_bytes(), format!("<keygate:{n}>")));
            }
        }
        let at = |pos: usize| -> Vec<(usize, usize)> {
            // (end, value index) of the occurrences starting at pos
            vals.iter()
                .enumerate()
                .filter(|(_, (v, _))| input[pos..].starts_with(v))
                .map(|(i, (v, _))| (pos + v.len(), i))
                .collect()
        };
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let here = at(pos);
            // Longest at the leftmost position; ties go to the first value.
            let Some(&(mut end, first)) =
                here.iter().min_by_key(|(e, i)| (std::cmp::Reverse(*e), *i))
            else {
                out.push(input[pos]);
                pos += 1;
                continue;
            };
            out.extend_from_slice(vals[first].1.as_bytes());
            let mut last = first;
            let mut link_start = pos;
            loop {
                // The occurrence starting inside the current link that reaches furthest.
                let next = (link_start + 1..end)
                    .flat_map(|q| at(q).into_iter().map(move |(e, i)| (e, q, i)))
                    .filter(|(e, _, _)| *e > end)
                    .max_by_key(|(e, q, _)| (*e, std::cmp::Reverse(*q)));
                let Some((e, q, i)) = next else { break };
                if vals[i].1 != vals[last].1 {
                    out.extend_from_slice(vals[i].1.as_bytes());
                }
                last = i;
                link_start = q;
                end = e;
            }
            pos = end;
        }
        out
    }

    #[test]
    fn masks_values_and_leaves_the_rest() {
        let s = [("github/token", "ghp_123")];
        assert_eq!(
            stream(&s, b"token=ghp_123 and ghp_12 end\n", &[1000]),
            b"token=<keygate:github/token> and ghp_12 end\n"
        );
    }

    #[test]
    fn every_split_point() {
        let s = [("a", "secret"), ("b", "secret-long"), ("c", "cret-lo")];
        let input = b"xx secret-long yy secret zz secret-lo secret-longer crets";
        let want = oracle(&s, input);
        assert_eq!(
            want,
            b"xx <keygate:b> yy <keygate:a> zz <keygate:a><keygate:c> <keygate:b>er crets".to_vec()
        );
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let mut m = masker(&s);
                let mut out = Vec::new();
                m.push(&input[..i], &mut out);
                m.push(&input[i..j], &mut out);
                m.push(&input[j..], &mut out);
                m.finish(&mut out);
                assert_eq!(out, want, "split at {i}, {j}");
            }
        }
    }

    #[test]
    fn longest_value_wins_at_a_position() {
        let s = [("short", "abc"), ("long", "abcdef")];
        assert_eq!(
            stream(&s, b"abcdef abcde", &[1]),
            b"<keygate:long> <keygate:short>de"
        );
    }

    #[test]
    fn overlapping_occurrences_leave_nothing_behind() {
        let s = [("a", "abcd"), ("b", "cdef")];
        assert_eq!(stream(&s, b"-abcdef-", &[1]), b"-<keygate:a><keygate:b>-");
        assert_eq!(
            stream(&[("a", "aa")], b"aaaa|aa|a", &[3]),
            b"<keygate:a>|<keygate:a>|a"
        );
        // Adjacent, not overlapping: two regions.
        assert_eq!(
            stream(&[("a", "ab")], b"abab", &[2]),
            b"<keygate:a><keygate:a>"
        );
    }

    #[test]
    fn holds_only_a_possible_prefix() {
        let mut m = masker(&[("s", "hunter2")]);
        let mut out = Vec::new();
        m.push(b"Password: ", &mut out);
        assert_eq!(out, b"Password: ", "nothing held: no value starts here");
        out.clear();
        m.push(b"say hun", &mut out);
        assert_eq!(out, b"say ", "`hun` may begin the value");
        out.clear();
        m.push(b"ter2!", &mut out);
        assert_eq!(out, b"<keygate:s>!");
        out.clear();
        m.push(b"hunt", &mut out);
        m.finish(&mut out);
        assert_eq!(out, b"hunt", "a prefix at the end is written as it is");
    }

    #[test]
    fn empty_and_duplicate_values() {
        let s = [("e", ""), ("x", "v1"), ("y", "v1")];
        assert_eq!(stream(&s, b"v1 v2", &[1]), b"<keygate:x> v2");
        let mut m = masker(&[("e", "")]);
        assert!(!m.is_active());
        let mut out = Vec::new();
        m.push(b"anything", &mut out);
        assert_eq!(out, b"anything");
    }

    #[test]
    fn pump_streams_through_a_pipe() {
        let s = [("k", "SECRET")];
        let mut input = Vec::new();
        for i in 0..20_000 {
            input.extend_from_slice(format!("line {i} SEC").as_bytes());
            input.extend_from_slice(if i % 3 == 0 { b"RET\n" } else { b"ret\n" });
        }
        let mut out = Vec::new();
        let mut m = masker(&s);
        let n = pump(&input[..], &mut out, Some(&mut m)).expect("pump");
        assert_eq!(n, input.len() as u64);
        assert_eq!(out, oracle(&s, &input));
        assert_eq!(
            String::from_utf8_lossy(&out).matches("<keygate:k>").count(),
            6667
        );
    }

    /// A writer that takes at most 3 bytes a call: partial writes everywhere.
    struct Trickle(Vec<u8>);

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A reader that returns odd amounts.
    struct Odd<'a>(&'a [u8], usize);

    impl Read for Odd<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 += 1;
            let n = buf.len().min(self.0.len()).min(1 + self.1 * 7 % 50);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn pump_survives_partial_writes_and_odd_reads() {
        let s = [("a", "abcd"), ("b", "cdef"), ("c", "xyz")];
        let input = b"..abcdef..xyzxyz.abcd-cdef-abc-xy".repeat(200);
        let mut out = Trickle(Vec::new());
        let mut m = masker(&s);
        pump(Odd(&input, 0), &mut out, Some(&mut m)).expect("pump");
        assert_eq!(out.0, oracle(&s, &input));
    }

    /// 8 MiB in odd chunk sizes, values straddling the chunk boundaries.
    #[test]
    fn eight_mebibytes_in_odd_chunks() {
        let s = [
            ("a", "AKIA1234567890"),
            ("b", "ghp_abcdefghij"),
            ("c", "xoxb-1"),
        ];
        let mut input = Vec::with_capacity(8 << 20);
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        while input.len() < 8 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(97) {
                input.extend_from_slice(s[(x % 3) as usize].1.as_bytes());
            } else {
                input.push(b' ' + (x % 90) as u8);
            }
        }
        let want = oracle(&s, &input);
        assert_eq!(stream(&s, &input, &[65_536, 4093, 1, 77_777, 13]), want);
        let text = String::from_utf8_lossy(&want);
        assert!(!text.contains("AKIA1234567890") && !text.contains("ghp_abcdefghij"));
    }

    #[test]
    fn line_ending_forms_of_a_value() {
        assert!(line_ending_forms(b"one line").is_empty());
        // ocrnl changes nothing here, and both is onlcr again.
        assert_eq!(line_ending_forms(b"a\nb"), vec![b"a\r\nb".to_vec()]);
        assert_eq!(
            line_ending_forms(b"a\r\nb"),
            vec![
                b"a\r\r\nb".to_vec(),   // onlcr
                b"a\n\nb".to_vec(),     // ocrnl
                b"a\r\n\r\nb".to_vec(), // both
            ]
        );
        assert_eq!(
            line_ending_forms(b"a\rb"),
            vec![b"a\nb".to_vec(), b"a\r\nb".to_vec()]
        );
    }

    #[test]
    fn a_multi_line_value_is_masked_as_a_tty_writes_it() {
        let s = [("k", "first-line\nsecond-line")];
        let input = b"<first-line\r\nsecond-line>\r\n<first-line\nsecond-line>";
        let want = b"<<keygate:k>>\r\n<<keygate:k>>".to_vec();
        // Split at every pair of points: the CRLF form is masked across reads too.
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let mut m = masker(&s);
                let mut out = Vec::new();
                m.push(&input[..i], &mut out);
                m.push(&input[i..j], &mut out);
                m.push(&input[j..], &mut out);
                m.finish(&mut out);
                assert_eq!(out, want, "split at {i}, {j}");
            }
        }
        // `ocrnl`: a value's CR written as LF; and one line alone is not the value.
        let s = [("w", "user\r\npass")];
        assert_eq!(
            stream(&s, b"user\n\npass user\r\npass user\r\n\r\npass user", &[1]),
            b"<keygate:w> <keygate:w> <keygate:w> user"
        );
        // The held tail waits for a CRLF form as it waits for the value.
        let mut m = masker(&[("k", "ab\ncd")]);
        let mut out = Vec::new();
        m.push(b"x ab\r", &mut out);
        assert_eq!(out, b"x ");
        out.clear();
        m.push(b"\ncd!", &mut out);
        assert_eq!(out, b"<keygate:k>!");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn line_ending_forms_never_leak(
            values in proptest::collection::vec("[01\r\n]{1,5}", 1..4),
            pieces in proptest::collection::vec(("[01\r\n]{0,6}", 0usize..4, 0usize..4), 0..10),
            chunks in proptest::collection::vec(1usize..9, 1..6),
        ) {
            let names = ["p", "q", "r", "s"];
            // Each value in every form a terminal may give it, written out by hand.
            let forms = |v: &str| -> Vec<String> {
                let onlcr = v.replace('\n', "\r\n");
                let ocrnl = v.replace('\r', "\n");
                let both = ocrnl.replace('\n', "\r\n");
                vec![v.to_owned(), onlcr, ocrnl, both]
            };
            let mut input = Vec::new();
            for (text, k, f) in &pieces {
                input.extend_from_slice(text.as_bytes());
                if let Some(v) = values.get(*k) {
                    input.extend_from_slice(forms(v)[*f].as_bytes());
                }
            }
            let out = stream(
                &values.iter().enumerate().map(|(i, v)| (names[i], v.as_str())).collect::<Vec<_>>(),
                &input,
                &chunks,
            );
            // The rule, with every form given as a value of the same name.
            let mut all: Vec<(&str, String)> = Vec::new();
            for (i, v) in values.iter().enumerate() {
                for f in forms(v) {
                    all.push((names[i], f));
                }
            }
            let all_refs: Vec<(&str, &str)> = all.iter().map(|(n, v)| (*n, v.as_str())).collect();
            prop_assert_eq!(&out, &oracle(&all_refs, &input));
            for (_, v) in &all {
                prop_assert!(!out.windows(v.len()).any(|w| w == v.as_bytes()));
            }
        }

        #[test]
        fn streaming_equals_the_whole_input_rule(
            values in proptest::collection::vec("[012]{1,5}", 1..4),
            pieces in proptest::collection::vec(("[012]{0,6}", 0usize..4), 0..12),
            chunks in proptest::collection::vec(1usize..9, 1..6),
        ) {
            let names = ["p", "q", "r", "s"];
            let secrets: Vec<(&str, &str)> =
                values.iter().enumerate().map(|(i, v)| (names[i], v.as_str())).collect();
            // Text from the values' own alphabet, with values dropped in.
            let mut input = Vec::new();
            for (text, k) in &pieces {
                input.extend_from_slice(text.as_bytes());
                if let Some(v) = values.get(*k) {
                    input.extend_from_slice(v.as_bytes());
                }
            }
            let want = oracle(&secrets, &input);
            prop_assert_eq!(&stream(&secrets, &input, &chunks), &want);
            prop_assert_eq!(&stream(&secrets, &input, &[1]), &want);
            // No value survives: markers hold none of the digits the values are made of.
            for v in &values {
                prop_assert!(!want.windows(v.len()).any(|w| w == v.as_bytes()));
            }
        }
    }
}
