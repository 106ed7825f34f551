//! Number text and float conversions shared by both codecs: exact, bounded,
//! and in the decimal syntax cty accepts.

use bigdecimal::BigDecimal;
use bigdecimal::num_bigint::{self, BigInt};

use crate::framework::Number;

/// Largest decimal exponent (either sign) of a number, trailing zeros
/// removed. Bounds the memory that comparing or printing a hostile
/// `1e999999999` would take; the smallest subnormal `f64` (scale 1074) fits.
pub(crate) const MAX_EXPONENT: i64 = 4096;

/// Most significant digits of a number, trailing zeros removed.
pub(crate) const MAX_DIGITS: u64 = 4096;

/// Longest number text accepted: enough for the plain (no exponent) text of
/// every number within [`MAX_DIGITS`] and [`MAX_EXPONENT`], so whatever we
/// accept, we write back in a form we accept again (a fuzzer found that).
pub(crate) const MAX_NUMBER_TEXT: usize = (MAX_DIGITS as usize) + (MAX_EXPONENT as usize) + 8;

/// Parse a decimal number as cty does: optional sign, digits with an optional
/// point, optional exponent. No infinities, NaN, hex or digit separators.
pub(crate) fn parse_decimal(text: &str) -> Result<Number, String> {
    if text.len() > MAX_NUMBER_TEXT {
        return Err(format!("number text longer than {MAX_NUMBER_TEXT} characters"));
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'+') | Some(b'-')) {
        i += 1;
    }
    let int_start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut digits = i - int_start;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return Err(format!("{text:?} is not a decimal number"));
    }
    if matches!(bytes.get(i), Some(b'e') | Some(b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+') | Some(b'-')) {
            i += 1;
        }
        let exp_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exp_start {
            return Err(format!("{text:?} is not a decimal number: exponent has no digits"));
        }
    }
    if i != bytes.len() {
        return Err(format!("{text:?} is not a decimal number"));
    }
    let parsed: BigDecimal = text
        .parse()
        .map_err(|e| format!("{text:?} is not a decimal number: {e}"))?;
    check_range(Number(parsed))
}

/// Reject numbers beyond [`MAX_EXPONENT`] or [`MAX_DIGITS`], judged with
/// trailing zeros removed so `1000` and `1.000` fare alike.
pub(crate) fn check_range(n: Number) -> Result<Number, String> {
    if in_range(&n.0.normalized()) {
        Ok(n)
    } else {
        Err(format!(
            "numbers beyond {MAX_DIGITS} significant digits or exponent ±{MAX_EXPONENT} are not supported"
        ))
    }
}

fn in_range(normal: &BigDecimal) -> bool {
    let (_, scale) = normal.as_bigint_and_exponent();
    scale.abs() <= MAX_EXPONENT && normal.digits() <= MAX_DIGITS
}

/// The exact decimal value of a finite `f64` (every binary float is a finite
/// decimal: m·2^-k = m·5^k·10^-k).
pub(crate) fn from_f64_exact(f: f64) -> Result<Number, String> {
    if !f.is_finite() {
        return Err(format!("{f} is not supported: numbers must be finite"));
    }
    if f == 0.0 {
        return Ok(Number(BigDecimal::from(0)));
    }
    let bits = f.to_bits();
    let negative = bits >> 63 == 1;
    let exp_bits = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    // value = mantissa · 2^exp
    let (mantissa, exp) = if exp_bits == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), exp_bits - 1075)
    };
    let mut m = BigInt::from(mantissa);
    if negative {
        m = -m;
    }
    let d = if exp >= 0 {
        BigDecimal::new(m << (exp as usize), 0)
    } else {
        let k = (-exp) as u32;
        BigDecimal::new(m * num_bigint::BigInt::from(5u8).pow(k), i64::from(k))
    };
    Ok(Number(d.normalized()))
}

/// `n` as an `f64`, only when the float holds exactly that value.
pub(crate) fn to_f64_exact(n: &Number) -> Option<f64> {
    let f = n.to_f64()?;
    if !f.is_finite() {
        return None;
    }
    let back = from_f64_exact(f).ok()?;
    (back.0 == n.0).then_some(f)
}

/// Decimal text for a number, without exponent when that stays short (as
/// cty's `Text('f', -1)`), with one otherwise so huge exponents cannot blow up.
pub(crate) fn to_text(n: &Number) -> String {
    let normal = n.0.normalized();
    if in_range(&normal) {
        normal.to_plain_string()
    } else {
        normal.to_scientific_notation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cty_number_syntax() {
        for (text, want) in [
            ("1", "1"),
            ("-1", "-1"),
            ("+2.50", "2.5"),
            (".5", "0.5"),
            ("5.", "5"),
            ("1e3", "1000"),
            ("12345678901234567890.123", "12345678901234567890.123"),
        ] {
            let n = parse_decimal(text).unwrap();
            assert_eq!(to_text(&n), want, "{text}");
        }
        for bad in [
            "", "-", ".", "1e", "1_000", "inf", "NaN", "0x10", "1.2.3", " 1", "1e99999",
        ] {
            assert!(parse_decimal(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// Regression (fuzz, decode_json): a 1150-digit number with exponent 3669
    /// was accepted but its plain text (4800 characters) was then refused.
    #[test]
    fn accepted_numbers_reparse_from_their_text() {
        let digits = "4".to_string() + &"9".repeat(1100) + "59471774";
        for text in [
            format!("{digits}E3669"),
            format!("{digits}E-3669"),
            format!("1{}E-4096", "3".repeat(4095)),
        ] {
            let n = parse_decimal(&text).unwrap();
            let again = parse_decimal(&to_text(&n)).unwrap();
            assert_eq!(again, n);
        }
        assert!(parse_decimal(&"7".repeat(4097)).is_err());
        assert!(parse_decimal(&("1".to_string() + &"0".repeat(5000))).is_err());
        assert!(parse_decimal(&("7".repeat(4096) + &"0".repeat(4000))).is_ok());
    }

    #[test]
    fn floats_convert_exactly() {
        assert_eq!(to_text(&from_f64_exact(1.5).unwrap()), "1.5");
        assert_eq!(
            to_text(&from_f64_exact(0.1).unwrap()),
            "0.1000000000000000055511151231257827021181583404541015625"
        );
        assert_eq!(
            to_text(&from_f64_exact(-(2f64.powi(70))).unwrap()),
            "-1180591620717411303424"
        );
        assert!(from_f64_exact(f64::INFINITY).is_err());
        assert!(from_f64_exact(f64::NAN).is_err());
        assert_eq!(to_f64_exact(&parse_decimal("1.5").unwrap()), Some(1.5));
        assert_eq!(to_f64_exact(&parse_decimal("0.1").unwrap()), None);
        let tiny = from_f64_exact(f64::from_bits(1)).unwrap();
        assert_eq!(to_f64_exact(&tiny), Some(f64::from_bits(1)));
    }
}
