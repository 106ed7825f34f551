//! Diagnostics: what resources report instead of errors.

use super::path::AttributePath;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The operation failed; the CLI stops.
    Error,
    /// Worth the user's attention; the operation goes on.
    Warning,
}

/// One problem for the user: a short summary and a detail that says what
/// happened, whose problem it is and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A short summary, shown as the diagnostic's title.
    pub summary: String,
    /// What happened, whose problem it is and what to do.
    pub detail: String,
    /// Where in the configuration, so the CLI shows the HCL line.
    pub attribute: Option<AttributePath>,
}

impl Diagnostic {
    /// An error, at `attribute` when there is one.
    pub fn error(summary: &str, detail: String, attribute: Option<AttributePath>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            summary: summary.to_owned(),
            detail,
            attribute,
        }
    }
}

/// An accumulating list of diagnostics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Self {
        Self::default()
    }
    /// True when any diagnostic is an error.
    pub fn has_error(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }
    /// Add an error not tied to an attribute.
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Error, summary, detail, None);
    }
    /// Add a warning not tied to an attribute.
    pub fn warning(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Warning, summary, detail, None);
    }
    /// Add an error pointing at an attribute.
    pub fn attribute_error(&mut self, path: AttributePath, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Error, summary, detail, Some(path));
    }
    /// Add a warning pointing at an attribute.
    pub fn attribute_warning(&mut self, path: AttributePath, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Warning, summary, detail, Some(path));
    }
    /// Append all of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    fn push(
        &mut self,
        severity: Severity,
        summary: impl Into<String>,
        detail: impl Into<String>,
        attribute: Option<AttributePath>,
    ) {
        self.0.push(Diagnostic {
            severity,
            summary: summary.into(),
            detail: detail.into(),
            attribute,
        });
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}
