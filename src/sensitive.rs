//! A wrapper for secrets handed around near logs: its `Debug` and `Display`
//! print `(sensitive value)`, so a token that ends up in a span, an event
//! field or a `{:?}` of a larger struct is never written out.

use std::fmt;

/// A secret value. Reach the inner value only with [`Sensitive::expose`] or
/// [`Sensitive::into_inner`], at the place that really needs it.
///
/// ```
/// use terraform_provider_selfhost::sensitive::Sensitive;
/// let token = Sensitive::new("hunter2".to_owned());
/// assert_eq!(format!("{token:?} {token}"), "(sensitive value) (sensitive value)");
/// assert_eq!(token.expose(), "hunter2");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Sensitive<T>(T);

/// What a [`Sensitive`] prints instead of its value.
pub const REDACTED: &str = "(sensitive value)";

impl<T> Sensitive<T> {
    /// Wrap `value`.
    pub fn new(value: T) -> Self {
        Sensitive(value)
    }

    /// The secret itself; keep its uses few and away from logging.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwrap the secret.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Sensitive<T> {
    fn from(value: T) -> Self {
        Sensitive(value)
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)] // fields read through Debug only
    struct Connection {
        host: String,
        key: Sensitive<String>,
    }

    #[test]
    fn hides_the_value_in_every_format() {
        let s = Sensitive::new("top-secret".to_owned());
        for text in [format!("{s}"), format!("{s:?}"), format!("{s:#?}"), format!("{s:>30}")] {
            assert!(!text.contains("top-secret"), "{text}");
            assert!(text.contains(REDACTED), "{text}");
        }
        let c = Connection {
            host: "h".into(),
            key: "top-secret".to_owned().into(),
        };
        let text = format!("{c:?}");
        assert!(!text.contains("top-secret"), "{text}");
        assert!(text.contains("\"h\""), "{text}");
    }

    #[test]
    fn gives_the_value_back() {
        let s = Sensitive::from(vec![1u8, 2]);
        assert_eq!(s.expose(), &vec![1, 2]);
        assert_eq!(s.into_inner(), vec![1, 2]);
    }
}
