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
mod tests;
