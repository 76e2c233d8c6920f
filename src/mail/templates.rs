//! The messages the server sends, kept as files beside this module (`templates/*.txt` and
//! `*.html`, embedded at compile time): each has a plain-text and an HTML body, the HTML one
//! set inside `templates/layout.html`.
//!
//! Placeholders are `{{name}}` (`token`, `handle`, `hostname`, `content`; `subject` and
//! `body` in the layout). Substitution is one pass, so a value that itself contains `{{…}}`
//! is never expanded; values are HTML-escaped in HTML bodies.

use super::Mail;

/// Which message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    ConfirmEmail,
    UpdateEmail,
    ResetPassword,
    DeleteAccount,
    PlcOperation,
    /// The code of the `emailAuthFactor` sign-in.
    SignIn,
    /// `com.atproto.admin.sendEmail`: the moderator's text as the body.
    Moderation,
}

/// The values a template may use. `hostname` is filled in by the outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateValues {
    pub token: String,
    pub handle: String,
    pub hostname: String,
    pub content: String,
    /// Overrides the template's subject (moderation mail).
    pub subject: Option<String>,
}

impl TemplateValues {
    pub fn token(token: impl Into<String>) -> Self {
        TemplateValues {
            token: token.into(),
            ..Self::default()
        }
    }

    pub fn with_handle(mut self, handle: impl Into<String>) -> Self {
        self.handle = handle.into();
        self
    }
}

const LAYOUT: &str = include_str!("templates/layout.html");

impl Template {
    pub const ALL: [Template; 7] = [
        Template::ConfirmEmail,
        Template::UpdateEmail,
        Template::ResetPassword,
        Template::DeleteAccount,
        Template::PlcOperation,
        Template::SignIn,
        Template::Moderation,
    ];

    /// The subject line (the reference's wording where it has the message).
    pub fn subject(self) -> &'static str {
        match self {
            Template::ConfirmEmail => "Email Confirmation",
            Template::UpdateEmail => "Email Update Requested",
            Template::ResetPassword => "Password Reset Requested",
            Template::DeleteAccount => "Account Deletion Requested",
            Template::PlcOperation => "PLC Update Operation Requested",
            Template::SignIn => "Sign-in Code",
            Template::Moderation => "Message via your PDS",
        }
    }

    /// The plain-text and HTML bodies, unrendered.
    fn sources(self) -> (&'static str, &'static str) {
        match self {
            Template::ConfirmEmail => (
                include_str!("templates/confirm_email.txt"),
                include_str!("templates/confirm_email.html"),
            ),
            Template::UpdateEmail => (
                include_str!("templates/update_email.txt"),
                include_str!("templates/update_email.html"),
            ),
            Template::ResetPassword => (
                include_str!("templates/reset_password.txt"),
                include_str!("templates/reset_password.html"),
            ),
            Template::DeleteAccount => (
                include_str!("templates/delete_account.txt"),
                include_str!("templates/delete_account.html"),
            ),
            Template::PlcOperation => (
                include_str!("templates/plc_operation.txt"),
                include_str!("templates/plc_operation.html"),
            ),
            Template::SignIn => (
                include_str!("templates/sign_in.txt"),
                include_str!("templates/sign_in.html"),
            ),
            Template::Moderation => (
                include_str!("templates/moderation.txt"),
                include_str!("templates/moderation.html"),
            ),
        }
    }

    /// The message to `to`.
    pub fn render(self, to: &str, values: &TemplateValues) -> Mail {
        let subject = values
            .subject
            .clone()
            .unwrap_or_else(|| self.subject().to_owned());
        let (text, html) = self.sources();
        let lookup = |name: &str| -> Option<&str> {
            match name {
                "token" => Some(&values.token),
                "handle" => Some(&values.handle),
                "hostname" => Some(&values.hostname),
                "content" => Some(&values.content),
                "subject" => Some(&subject),
                _ => None,
            }
        };
        let text = fill(text, |name| lookup(name).map(str::to_owned));
        let body = fill(html, |name| lookup(name).map(escape_html));
        let html = fill(LAYOUT, |name| match name {
            "body" => Some(body.clone()),
            other => lookup(other).map(escape_html),
        });
        Mail {
            to: to.to_owned(),
            subject,
            text,
            html: Some(html),
        }
    }
}

/// Replaces each `{{name}}` in `source` by `value(name)`, in one pass; unknown names stay.
fn fill(source: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = &after[..end];
                match value(name.trim()) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> TemplateValues {
        TemplateValues {
            token: "ABCDE-23456".into(),
            handle: "alice.test".into(),
            hostname: "pds.example.com".into(),
            content: "Hello <b>you</b> {{token}}".into(),
            subject: None,
        }
    }

    #[test]
    fn every_template_fills_every_placeholder() {
        for template in Template::ALL {
            let mail = template.render("alice@example.com", &values());
            let html = mail.html.as_deref().unwrap();
            assert_eq!(mail.to, "alice@example.com");
            assert_eq!(mail.subject, template.subject());
            for body in [mail.text.as_str(), html] {
                assert!(body.contains("pds.example.com"), "{template:?}: {body}");
                // Only the moderation content (a value, not expanded) contains braces.
                let without = body.replace("{{token}}", "");
                assert!(!without.contains("{{"), "{template:?}: {body}");
            }
            assert!(html.starts_with("<!DOCTYPE html>"), "{template:?}");
            if template != Template::Moderation {
                assert!(mail.text.contains("ABCDE-23456"), "{template:?}");
                assert!(html.contains("ABCDE-23456"), "{template:?}");
            }
        }
    }

    #[test]
    fn handle_appears_where_the_message_names_the_account() {
        for template in [Template::ResetPassword, Template::SignIn] {
            let mail = template.render("a@example.com", &values());
            assert!(mail.text.contains("@alice.test"), "{template:?}");
        }
    }

    #[test]
    fn moderation_content_is_escaped_in_html_and_never_expanded() {
        let mut v = values();
        v.subject = Some("About your <account>".into());
        let mail = Template::Moderation.render("a@example.com", &v);
        assert_eq!(mail.subject, "About your <account>");
        assert!(mail.text.starts_with("Hello <b>you</b> {{token}}\n"));
        let html = mail.html.unwrap();
        assert!(
            html.contains("Hello &lt;b&gt;you&lt;/b&gt; {{token}}"),
            "{html}"
        );
        assert!(
            html.contains("<title>About your &lt;account&gt;</title>"),
            "{html}"
        );
        assert!(!html.contains("ABCDE-23456"));
    }

    #[test]
    fn fill_is_one_pass() {
        let out = fill("a {{x}} b {{y}} c {{", |n| {
            (n == "x").then(|| "{{y}}".into())
        });
        assert_eq!(out, "a {{y}} b {{y}} c {{");
    }
}
