//! JSON in and out, exactly: what both halves of the crate send and receive.
//!
//! - [`to_writer`] refuses values JSON cannot carry (NaN, ±infinity), which
//!   `serde_json` would silently write as `null`.
//! - [`from_slice`] reads an integer literal outside the 64-bit range
//!   (below `-2^63` or above `2^64 - 1`; Python's integers have no bound)
//!   exactly into a 128-bit integer (`u128`, `i128`, a field of those
//!   types), and refuses it where `serde_json` would silently turn it into
//!   a float with other digits (`serde_json::Value`, `f64`, a `u64` that
//!   overflows): the caller gets an error and keeps the raw bytes, never a
//!   changed number.
//!
//! The check costs one pass over the bytes looking for a run of 19 digits;
//! only a message holding one is tokenised, then decoded through a guard
//! that refuses the float such a literal would become. (In such a message
//! a float literal written with an integral value beyond the 64-bit range,
//! `1e20`, is refused too: the guard cannot tell it from the integer.)

use serde::de::DeserializeOwned;
use serde::ser::{self, Serialize, Serializer};

/// Decodes `bytes` as JSON into `T`; an integer beyond 64 bits is read
/// exactly into a 128-bit integer, and refused where it would become a
/// float.
pub(crate) fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let Some(literal) = integer_beyond_64_bits(bytes) else {
        return serde_json::from_slice(bytes);
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = T::deserialize(guard::Guard {
        inner: &mut deserializer,
        literal: &literal,
    })?;
    deserializer.end()?;
    Ok(value)
}

/// Writes `value` as JSON to `writer`, refusing NaN and infinities.
pub(crate) fn to_writer<T: Serialize + ?Sized>(
    writer: &mut Vec<u8>,
    value: &T,
) -> Result<(), serde_json::Error> {
    let mut serializer = serde_json::Serializer::new(writer);
    value.serialize(Finite(&mut serializer))
}

/// `value` as JSON, refusing NaN and infinities.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    to_writer(&mut out, value)?;
    Ok(out)
}

/// The first integer literal (outside strings) that does not fit in an
/// `i64` or a `u64`, shortened for an error message.
fn integer_beyond_64_bits(bytes: &[u8]) -> Option<String> {
    if !has_digit_run(bytes, 19) {
        return None;
    }
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                at += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = at;
                at += 1;
                while at < bytes.len() && bytes[at].is_ascii_digit() {
                    at += 1;
                }
                let fraction = matches!(bytes.get(at), Some(b'.' | b'e' | b'E'));
                while at < bytes.len()
                    && matches!(bytes[at], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    at += 1;
                }
                let literal = std::str::from_utf8(&bytes[start..at]).unwrap_or_default();
                if !fraction && literal.parse::<i64>().is_err() && literal.parse::<u64>().is_err() {
                    // Digits and a sign only: ASCII, so any cut is a char boundary.
                    return Some(match literal.len() {
                        0..=40 => literal.to_owned(),
                        len => format!("{}… ({len} digits)", &literal[..40]),
                    });
                }
            }
            _ => at += 1,
        }
    }
    None
}

/// Whether `bytes` hold `len` ASCII digits in a row. 2^64 - 1 and -2^63
/// have 20 and 19 digits, so a message without a run of 19 holds no
/// integer beyond 64 bits. Every run of `len` covers a multiple of `len`:
/// only those bytes are looked at, and the runs through them measured.
fn has_digit_run(bytes: &[u8], len: usize) -> bool {
    let digit = |byte: &u8| byte.is_ascii_digit();
    (0..bytes.len()).step_by(len).any(|at| {
        if !digit(&bytes[at]) {
            return false;
        }
        let before = bytes[..at].iter().rev().take_while(|b| digit(b)).count();
        let after = bytes[at..].iter().take_while(|b| digit(b)).count();
        before + after >= len
    })
}

/// A serializer that passes everything to the inner one, refusing
/// non-finite floats wherever they sit in the value.
struct Finite<S>(S);

/// A value serialized through [`Finite`].
struct Checked<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Checked<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Finite(serializer))
    }
}

fn non_finite<E: ser::Error>(value: f64) -> E {
    E::custom(format_args!(
        "{value} cannot be sent: JSON has no NaN or infinity"
    ))
}

/// Forwards the serializer methods that carry no nested value.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<$ret, Self::Error> {
            self.0.$method($($arg),*).map(Finite)
        }
    )*};
}

/// Forwards the serializer methods that return a value as it is.
macro_rules! forward_plain {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<Self::Ok, Self::Error> {
            self.0.$method($($arg),*)
        }
    )*};
}

impl<S: Serializer> Serializer for Finite<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Finite<S::SerializeSeq>;
    type SerializeTuple = Finite<S::SerializeTuple>;
    type SerializeTupleStruct = Finite<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Finite<S::SerializeTupleVariant>;
    type SerializeMap = Finite<S::SerializeMap>;
    type SerializeStruct = Finite<S::SerializeStruct>;
    type SerializeStructVariant = Finite<S::SerializeStructVariant>;

    forward_plain! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    forward! {
        serialize_seq(len: Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(len: usize) -> Self::SerializeTuple;
        serialize_tuple_struct(name: &'static str, len: usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(name: &'static str, index: u32, variant: &'static str, len: usize) -> Self::SerializeTupleVariant;
        serialize_map(len: Option<usize>) -> Self::SerializeMap;
        serialize_struct(name: &'static str, len: usize) -> Self::SerializeStruct;
        serialize_struct_variant(name: &'static str, index: u32, variant: &'static str, len: usize) -> Self::SerializeStructVariant;
    }

    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        if !v.is_finite() {
            return Err(non_finite(v.into()));
        }
        self.0.serialize_f32(v)
    }

    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        if !v.is_finite() {
            return Err(non_finite(v));
        }
        self.0.serialize_f64(v)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Checked(value))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Checked(value))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Checked(value))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Implements a compound serializer by checking each element it is given.
macro_rules! compound {
    ($($trait:ident { $($method:ident($($key:ident: $key_ty:ty,)?);)* })*) => {$(
        impl<S: ser::$trait> ser::$trait for Finite<S> {
            type Ok = S::Ok;
            type Error = S::Error;
            $(
                fn $method<T: Serialize + ?Sized>(&mut self, $($key: $key_ty,)? value: &T) -> Result<(), S::Error> {
                    self.0.$method($($key,)? &Checked(value))
                }
            )*
            fn end(self) -> Result<S::Ok, S::Error> {
                self.0.end()
            }
        }
    )*};
}

compound! {
    SerializeSeq { serialize_element(); }
    SerializeTuple { serialize_element(); }
    SerializeTupleStruct { serialize_field(); }
    SerializeTupleVariant { serialize_field(); }
    SerializeStruct { serialize_field(key: &'static str,); }
    SerializeStructVariant { serialize_field(key: &'static str,); }
}

impl<S: ser::SerializeMap> ser::SerializeMap for Finite<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        self.0.serialize_key(&Checked(key))
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_value(&Checked(value))
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

mod guard;

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    #[test]
    fn integers_beyond_64_bits_are_refused() {
        for text in [
            "18446744073709551616",
            "18446744073709551617",
            "1180591620717411303424",
            "-9223372036854775809",
            "[1, {\"a\": 99999999999999999999999}]",
            "{\"k\": -100000000000000000000}",
        ] {
            let err = from_slice::<Value>(text.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("64-bit range"), "{text}: {err}");
            assert!(from_slice::<f64>(text.as_bytes()).is_err(), "{text}");
        }
    }

    #[test]
    fn integers_beyond_64_bits_are_exact_in_128_bit_targets() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Big {
            n: u128,
            m: i128,
            list: Vec<Option<i128>>,
        }
        assert_eq!(
            from_slice::<u128>(b"18446744073709551616").unwrap(),
            1u128 << 64
        );
        assert_eq!(
            from_slice::<u128>(b"1180591620717411303424").unwrap(),
            1u128 << 70
        );
        assert_eq!(
            from_slice::<i128>(b"-9223372036854775809").unwrap(),
            -(1i128 << 63) - 1
        );
        let text = br#"{"n": 18446744073709551616, "m": -9223372036854775809, "list": [null, 1180591620717411303424]}"#;
        assert_eq!(
            from_slice::<Big>(text).unwrap(),
            Big {
                n: 1 << 64,
                m: -(1 << 63) - 1,
                list: vec![None, Some(1 << 70)],
            }
        );
        // Where it would become a float, or overflow a u64: refused.
        for text in [
            &b"[18446744073709551616]"[..],
            br#"{"n": 18446744073709551616}"#,
        ] {
            let err = from_slice::<Value>(text).unwrap_err();
            assert!(err.to_string().contains("64-bit range"), "{err}");
        }
        assert!(from_slice::<u64>(b"18446744073709551616").is_err());
        assert!(from_slice::<Vec<f64>>(b"[1.5, -9223372036854775809]").is_err());
    }

    #[test]
    fn integers_within_64_bits_floats_and_strings_pass() {
        for (text, value) in [
            ("18446744073709551615", json!(u64::MAX)),
            ("-9223372036854775808", json!(i64::MIN)),
            ("9223372036854775808", json!(9223372036854775808u64)),
            ("\"18446744073709551616\"", json!("18446744073709551616")),
            (
                "\"\\\"18446744073709551616\"",
                json!("\"18446744073709551616"),
            ),
            ("1.8446744073709551616", json!(1.8446744073709552)),
            ("18446744073709551616.0", json!(18446744073709551616.0)),
            ("1e30", json!(1e30)),
            (
                "[123456789012345678, -1]",
                json!([123456789012345678u64, -1]),
            ),
        ] {
            assert_eq!(
                from_slice::<Value>(text.as_bytes()).unwrap(),
                value,
                "{text}"
            );
        }
    }

    #[test]
    fn digit_runs_are_found_wherever_they_sit() {
        for len in 0..60 {
            for start in 0..25 {
                let mut text = vec![b'x'; 100];
                text[start..start + len].fill(b'7');
                assert_eq!(
                    has_digit_run(&text, 19),
                    len >= 19,
                    "{len} digits at {start}"
                );
            }
        }
        assert!(!has_digit_run(b"", 19));
        assert!(has_digit_run(&[b'1'; 19], 19));
        assert!(!has_digit_run(&[b'1'; 18], 19));
    }

    #[test]
    fn long_literals_are_shortened_in_the_error() {
        // Within f64's range: refused by the guard, naming the literal cut.
        let text = "1".repeat(300);
        let err = from_slice::<Value>(text.as_bytes()).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
        assert!(err.to_string().contains("300 digits"), "{err}");
        // Beyond it: refused by serde_json itself, briefly.
        let text = "1".repeat(10_000);
        let err = from_slice::<Value>(text.as_bytes()).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
    }

    #[test]
    fn non_finite_floats_are_refused_wherever_they_sit() {
        #[derive(Serialize)]
        struct Point {
            x: f64,
            y: Option<f32>,
        }
        #[derive(Serialize)]
        enum Shape {
            At(f64),
            Pair(f64, f64),
            Named { r: f64 },
        }
        let nan = f64::NAN;
        type Encode = Box<dyn Fn() -> Result<Vec<u8>, serde_json::Error>>;
        let refused: Vec<Encode> = vec![
            Box::new(move || to_vec(&nan)),
            Box::new(|| to_vec(&f64::INFINITY)),
            Box::new(|| to_vec(&f32::NEG_INFINITY)),
            Box::new(|| to_vec(&[1.0, f64::NAN])),
            Box::new(|| to_vec(&(1, f64::NAN))),
            Box::new(|| {
                to_vec(&Point {
                    x: 0.0,
                    y: Some(f32::NAN),
                })
            }),
            Box::new(|| to_vec(&Shape::At(f64::INFINITY))),
            Box::new(|| to_vec(&Shape::Pair(1.0, f64::NAN))),
            Box::new(|| to_vec(&Shape::Named { r: f64::NAN })),
            Box::new(|| to_vec(&BTreeMap::from([("k", f64::NAN)]))),
            Box::new(|| to_vec(&Some(vec![Some(f64::NAN)]))),
        ];
        for (case, encode) in refused.iter().enumerate() {
            let err = encode().unwrap_err();
            assert!(
                err.to_string().contains("no NaN or infinity"),
                "case {case}: {err}"
            );
        }
    }

    #[test]
    fn finite_values_encode_as_serde_json_does() {
        let value = json!({"a": [1, 2.5, null, "x", {"b": -0.0}], "c": u64::MAX, "d": "ü"});
        assert_eq!(to_vec(&value).unwrap(), serde_json::to_vec(&value).unwrap());
        let tuple = (1u8, 'c', "s", (), Some(1e300), [0.1f32]);
        assert_eq!(to_vec(&tuple).unwrap(), serde_json::to_vec(&tuple).unwrap());
    }
}
