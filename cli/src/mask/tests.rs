//! The masker's tests: fixed cases, and properties over chunkings and overlapping values.

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
        let Some(&(mut end, first)) = here.iter().min_by_key(|(e, i)| (std::cmp::Reverse(*e), *i))
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
