//! Integers as JSON spells them: `41` and `41.0` are the same number (RFC 8259 has one number
//! type, and JSON Schema's `integer` admits both), and some encoders write whole numbers with a
//! fraction. serde's integer types take only the first spelling; these deserializers take both,
//! and still refuse a fraction (`41.5`) or a value out of the target type's range.
//!
//! Use with `#[serde(deserialize_with = "clarity_domain::whole_number::int")]` (or `opt_int` for
//! an `Option`, together with `#[serde(default)]`).

use serde::de::{Error, Unexpected};
use serde::{Deserialize, Deserializer};

/// An integer of type `T`, spelled with or without a zero fraction.
pub fn int<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole: i128 = if let Some(u) = number.as_u64() {
        i128::from(u)
    } else if let Some(i) = number.as_i64() {
        i128::from(i)
    } else {
        let f = number.as_f64().unwrap_or(f64::NAN);
        // Beyond 2^64 no target type holds it anyway; the cast below is exact under that.
        if f.fract() != 0.0 || !f.is_finite() || f.abs() > 18_446_744_073_709_551_615.0 {
            return Err(D::Error::invalid_value(Unexpected::Float(f), &"an integer"));
        }
        f as i128
    };
    T::try_from(whole).map_err(|_| {
        D::Error::invalid_value(
            Unexpected::Other("an integer out of range"),
            &"an integer in range",
        )
    })
}

/// An optional integer of type `T` (`null` is `None`), spelled with or without a zero fraction.
pub fn opt_int<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    #[derive(Deserialize)]
    struct Whole<T: TryFrom<i128>>(#[serde(deserialize_with = "int")] T);
    Ok(Option::<Whole<T>>::deserialize(deserializer)?.map(|Whole(value)| value))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Numbers {
        #[serde(deserialize_with = "super::int")]
        small: u8,
        #[serde(deserialize_with = "super::int")]
        big: u64,
        #[serde(default, deserialize_with = "super::opt_int")]
        maybe: Option<i64>,
    }

    fn parse(json: &str) -> Result<Numbers, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn a_whole_number_is_accepted_with_or_without_a_zero_fraction() {
        let expected = Numbers {
            small: 41,
            big: u64::MAX,
            maybe: Some(-3),
        };
        assert_eq!(
            parse(r#"{"small": 41, "big": 18446744073709551615, "maybe": -3}"#).unwrap(),
            expected
        );
        assert_eq!(
            parse(r#"{"small": 41.0, "big": 18446744073709551615, "maybe": -3.0}"#).unwrap(),
            expected
        );
        assert_eq!(parse(r#"{"small": 1, "big": 2}"#).unwrap().maybe, None);
        assert_eq!(
            parse(r#"{"small": 1, "big": 2, "maybe": null}"#)
                .unwrap()
                .maybe,
            None
        );
    }

    #[test]
    fn a_fraction_or_a_value_out_of_range_is_refused() {
        assert!(parse(r#"{"small": 41.5, "big": 1}"#).is_err());
        assert!(parse(r#"{"small": 256, "big": 1}"#).is_err());
        assert!(parse(r#"{"small": 256.0, "big": 1}"#).is_err());
        assert!(parse(r#"{"small": -1, "big": 1}"#).is_err());
        assert!(parse(r#"{"small": 1, "big": 1e300}"#).is_err());
        assert!(parse(r#"{"small": "1", "big": 1}"#).is_err());
    }
}
