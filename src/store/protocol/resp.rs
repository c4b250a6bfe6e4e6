//! RESP2, the Redis protocol, without I/O: commands written into a
//! buffer, and replies read back from bytes as they arrive.
//!
//! The stores speak RESP2 only (they never send `HELLO 3`). The reader is
//! resumable: it keeps what it has read of a reply between calls, so a
//! reply of any size arriving in pieces is read in linear time, and it
//! refuses what no Redis sends (an unknown type byte, a negative length
//! other than -1, nesting deeper than [`MAX_DEPTH`], a bulk larger than
//! [`MAX_BULK`]) with an error, never a panic.

use std::fmt;

/// A reply, as Redis sends it in RESP2.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// A null bulk string or a null array.
    Nil,
    /// A simple string (`+OK`).
    Status(String),
    /// An integer.
    Int(i64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// An array.
    Array(Vec<Reply>),
    /// An error reply (`-WRONGTYPE …`): the server refused the command.
    Error(String),
}

impl fmt::Debug for Reply {
    /// Bounded: a reply may hold a message's whole contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nil => f.write_str("nil"),
            Self::Status(status) => write!(f, "+{status}"),
            Self::Int(value) => write!(f, ":{value}"),
            Self::Bulk(bytes) => write!(f, "bulk({} bytes)", bytes.len()),
            Self::Array(items) => write!(f, "array({} items)", items.len()),
            Self::Error(message) => write!(f, "-{message}"),
        }
    }
}

/// The deepest nesting of arrays a reply may have: Redis's own replies to
/// the stores' commands nest three deep at most (`CLUSTER SLOTS`).
pub(crate) const MAX_DEPTH: usize = 32;

/// The largest bulk string read: Redis's `proto-max-bulk-len` at most.
pub(crate) const MAX_BULK: usize = 512 * 1024 * 1024;

/// Bytes that are not a RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server sent what is not a RESP2 reply: {0}")]
pub(crate) struct ProtocolError(pub(crate) String);

/// Appends the command `args` (an array of bulk strings) to `out`.
pub(crate) fn write_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    write_header(out, b'*', args.len());
    for arg in args {
        write_bulk(out, arg.as_ref());
    }
}

/// Appends the array header of a command of `count` arguments.
pub(crate) fn write_array_header(out: &mut Vec<u8>, count: usize) {
    write_header(out, b'*', count);
}

/// Appends one bulk string.
pub(crate) fn write_bulk(out: &mut Vec<u8>, arg: &[u8]) {
    write_header(out, b'$', arg.len());
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// Appends `$len` or `*count` and its line end, built on the stack and
/// copied at once.
fn write_header(out: &mut Vec<u8>, kind: u8, mut value: usize) {
    // A kind byte, up to 20 digits, the line end.
    let mut header = [0u8; 23];
    header[21..].copy_from_slice(b"\r\n");
    let mut at = 21;
    loop {
        at -= 1;
        header[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    at -= 1;
    header[at] = kind;
    out.extend_from_slice(&header[at..]);
}

/// Reads replies from bytes as they arrive.
///
/// [`read`](Self::read) takes what has arrived, consumes every complete
/// element it can (scalars, and the headers of arrays, whose elements it
/// keeps until the array is whole) and says how many bytes it consumed;
/// the caller drops those and calls again with more bytes.
#[derive(Debug, Default)]
pub(crate) struct ReplyReader {
    /// Arrays being read: their elements so far and how many are missing.
    open: Vec<(Vec<Reply>, usize)>,
}

/// What [`ReplyReader::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Read {
    /// How many bytes of the input were consumed.
    pub(crate) consumed: usize,
    /// A whole reply, when one was completed.
    pub(crate) reply: Option<Reply>,
    /// When no reply was completed: how many more bytes at least must
    /// arrive before one can be (a hint, to read a large bulk at once).
    pub(crate) wanted: usize,
}

impl ReplyReader {
    /// Whether part of a reply has been read and the rest is awaited.
    pub(crate) fn is_midway(&self) -> bool {
        !self.open.is_empty()
    }

    /// Reads from `input` until one reply is whole or the input runs out.
    pub(crate) fn read(&mut self, input: &[u8]) -> Result<Read, ProtocolError> {
        let mut consumed = 0;
        loop {
            let rest = &input[consumed..];
            let (element, used) = match element(rest)? {
                Element::Incomplete(wanted) => {
                    return Ok(Read {
                        consumed,
                        reply: None,
                        wanted: wanted.saturating_sub(rest.len()).max(1),
                    });
                }
                Element::Done(element, used) => (element, used),
            };
            consumed += used;
            let mut done = match element {
                Parsed::Value(reply) => reply,
                Parsed::ArrayHeader(0) => Reply::Array(Vec::new()),
                Parsed::ArrayHeader(count) => {
                    if self.open.len() >= MAX_DEPTH {
                        return Err(ProtocolError(format!(
                            "arrays nested more than {MAX_DEPTH} deep"
                        )));
                    }
                    self.open.push((Vec::with_capacity(count.min(1024)), count));
                    continue;
                }
            };
            // Completes the arrays this element ends.
            loop {
                let Some((items, missing)) = self.open.last_mut() else {
                    return Ok(Read {
                        consumed,
                        reply: Some(done),
                        wanted: 0,
                    });
                };
                items.push(done);
                *missing -= 1;
                if *missing > 0 {
                    break;
                }
                let (items, _) = self.open.pop().expect("an open array");
                done = Reply::Array(items);
            }
        }
    }
}

/// One element of a reply.
enum Parsed {
    Value(Reply),
    ArrayHeader(usize),
}

enum Element {
    /// Read in full, and the bytes it took.
    Done(Parsed, usize),
    /// Not all there: the element needs at least this many bytes.
    Incomplete(usize),
}

/// One element at the start of `input`.
fn element(input: &[u8]) -> Result<Element, ProtocolError> {
    let Some(end) = input.windows(2).position(|pair| pair == b"\r\n") else {
        // A status or an error is a line of text; any other line is a
        // type byte and a number.
        let longest = match input.first() {
            Some(b'+' | b'-') => MAX_BULK,
            _ => 64,
        };
        if input.len() > longest {
            return Err(ProtocolError(format!("a line longer than {longest} bytes")));
        }
        return Ok(Element::Incomplete(input.len() + 2));
    };
    if end == 0 {
        return Err(ProtocolError(
            "an empty line where a reply's type belongs".into(),
        ));
    }
    let line = &input[1..end];
    let after = end + 2;
    let parsed = match input[0] {
        b'+' => Parsed::Value(Reply::Status(text(line))),
        b'-' => Parsed::Value(Reply::Error(text(line))),
        b':' => Parsed::Value(Reply::Int(integer(line)?)),
        b'$' => {
            let len = integer(line)?;
            if len == -1 {
                return Ok(Element::Done(Parsed::Value(Reply::Nil), after));
            }
            let len = usize::try_from(len)
                .ok()
                .filter(|len| *len <= MAX_BULK)
                .ok_or_else(|| ProtocolError(format!("a bulk string of length {len}")))?;
            let total = after + len + 2;
            if input.len() < total {
                return Ok(Element::Incomplete(total));
            }
            if &input[after + len..total] != b"\r\n" {
                return Err(ProtocolError("a bulk string not ended by CRLF".into()));
            }
            return Ok(Element::Done(
                Parsed::Value(Reply::Bulk(input[after..after + len].to_vec())),
                total,
            ));
        }
        b'*' => match integer(line)? {
            -1 => Parsed::Value(Reply::Nil),
            count => Parsed::ArrayHeader(
                usize::try_from(count)
                    .ok()
                    .filter(|count| *count <= i32::MAX as usize)
                    .ok_or_else(|| ProtocolError(format!("an array of length {count}")))?,
            ),
        },
        other => {
            return Err(ProtocolError(format!(
                "a reply beginning with the byte {other:#04x}"
            )));
        }
    };
    Ok(Element::Done(parsed, after))
}

fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// The integer of a line (a length, a count, an integer reply): what
/// `str::parse::<i64>` accepts, read from the bytes as they are.
fn integer(line: &[u8]) -> Result<i64, ProtocolError> {
    let (negative, digits) = match line {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, line),
    };
    // Gathered below zero, where `i64::MIN` fits.
    let below = digits.iter().try_fold(0i64, |value, &digit| {
        let digit = i64::from(digit.wrapping_sub(b'0'));
        if digit > 9 {
            return None;
        }
        value.checked_mul(10)?.checked_sub(digit)
    });
    below
        .filter(|_| !digits.is_empty())
        .and_then(|below| {
            if negative {
                Some(below)
            } else {
                below.checked_neg()
            }
        })
        .ok_or_else(|| {
            ProtocolError(format!(
                "{:?} where an integer belongs",
                String::from_utf8_lossy(&line[..line.len().min(32)])
            ))
        })
}

/// Reads every whole reply in `input` at once (for tests and the fuzz
/// target): the replies, and the bytes left over.
pub(crate) fn read_all(input: &[u8]) -> Result<(Vec<Reply>, usize), ProtocolError> {
    let mut reader = ReplyReader::default();
    let mut replies = Vec::new();
    let mut at = 0;
    loop {
        let read = reader.read(&input[at..])?;
        at += read.consumed;
        match read.reply {
            Some(reply) => replies.push(reply),
            None => return Ok((replies, input.len() - at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(bytes: &[u8]) -> Reply {
        Reply::Bulk(bytes.to_vec())
    }

    #[test]
    fn an_empty_line_is_a_protocol_error_not_a_panic() {
        for input in [&b"\r\n"[..], b"*2\r\n\r\n", b"*1\r\n\r\n:1\r\n"] {
            assert!(read_all(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn integers_read_as_str_parse_reads_them() {
        let parsed = |line: &[u8]| std::str::from_utf8(line).ok()?.parse::<i64>().ok();
        let mut lines: Vec<Vec<u8>> = [
            "",
            "-",
            "+",
            "0",
            "-0",
            "+7",
            "007",
            "12345",
            " 1",
            "1 ",
            "1a",
            "--1",
            "+-1",
            "٣",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "18446744073709551616",
        ]
        .iter()
        .map(|line| line.as_bytes().to_vec())
        .collect();
        lines.extend((0..=255u8).map(|byte| vec![byte]));
        lines.extend((0..=255u8).map(|byte| vec![b'4', byte, b'2']));
        for line in &lines {
            assert_eq!(integer(line).ok(), parsed(line), "{line:?}");
        }
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        write_command(&mut out, &[&b"RPUSH"[..], b"k", b"", b"\r\n"]);
        assert_eq!(
            out,
            b"*4\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$0\r\n\r\n$2\r\n\r\n\r\n"
        );
        for value in [0, 7, 10, 99, 100, 4096, 12345, usize::MAX] {
            let mut out = b"+".to_vec();
            write_header(&mut out, b'$', value);
            assert_eq!(out, format!("+${value}\r\n").as_bytes());
        }
    }

    #[test]
    fn every_kind_of_reply_reads_back() {
        let input = b"+OK\r\n-ERR no\r\n:-7\r\n$3\r\na\r\n\r\n$-1\r\n*-1\r\n*0\r\n\
                      *3\r\n:1\r\n*2\r\n$1\r\nx\r\n$-1\r\n+s\r\n";
        let (replies, left) = read_all(input).unwrap();
        assert_eq!(left, 0);
        assert_eq!(
            replies,
            [
                Reply::Status("OK".into()),
                Reply::Error("ERR no".into()),
                Reply::Int(-7),
                bulk(b"a\r\n"),
                Reply::Nil,
                Reply::Nil,
                Reply::Array(vec![]),
                Reply::Array(vec![
                    Reply::Int(1),
                    Reply::Array(vec![bulk(b"x"), Reply::Nil]),
                    Reply::Status("s".into()),
                ]),
            ]
        );
    }

    /// Fed one byte at a time, and in every split, the same replies come.
    #[test]
    fn replies_arriving_in_pieces_read_the_same() {
        let input: &[u8] = b"*2\r\n$5\r\nhello\r\n*1\r\n:42\r\n$0\r\n\r\n";
        let whole = read_all(input).unwrap().0;
        for split in 0..input.len() {
            let mut reader = ReplyReader::default();
            let mut buffer = Vec::new();
            let mut replies = Vec::new();
            for piece in [&input[..split], &input[split..]] {
                buffer.extend_from_slice(piece);
                loop {
                    let read = reader.read(&buffer).unwrap();
                    buffer.drain(..read.consumed);
                    match read.reply {
                        Some(reply) => replies.push(reply),
                        None => break,
                    }
                }
            }
            assert_eq!(replies, whole, "split at {split}");
            assert!(buffer.is_empty() && !reader.is_midway());
        }
        let mut reader = ReplyReader::default();
        let mut buffer = Vec::new();
        let mut replies = Vec::new();
        for byte in input {
            buffer.push(*byte);
            let read = reader.read(&buffer).unwrap();
            buffer.drain(..read.consumed);
            replies.extend(read.reply);
        }
        assert_eq!(replies, whole);
    }

    #[test]
    fn a_large_bulk_says_how_much_is_still_wanted() {
        let mut reader = ReplyReader::default();
        let read = reader.read(b"$1000000\r\nabc").unwrap();
        assert_eq!((read.consumed, read.reply), (0, None));
        assert_eq!(read.wanted, 1_000_000 + 2 - 3);
    }

    #[test]
    fn what_no_redis_sends_is_an_error() {
        for bad in [
            &b"?x\r\n"[..],
            b":abc\r\n",
            b"$-2\r\n",
            b"*-5\r\n",
            b"$2\r\nabcd\r\n",
            b"$99999999999999999999\r\n",
            b"$600000000\r\n",
        ] {
            assert!(read_all(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1);
        assert!(read_all(deep.as_bytes()).is_err());
        let fine = format!("{}:1\r\n", "*1\r\n".repeat(MAX_DEPTH));
        assert_eq!(read_all(fine.as_bytes()).unwrap().0.len(), 1);
    }

    #[test]
    fn a_huge_array_header_allocates_nothing_up_front() {
        let mut reader = ReplyReader::default();
        let read = reader.read(b"*2000000000\r\n").unwrap();
        assert_eq!(read.consumed, 13);
        assert!(reader.is_midway());
    }
}
