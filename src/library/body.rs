//! Markdown body to indexable text: headings kept apart (they are weighted higher), markup,
//! HTML tags and link targets dropped.

use pulldown_cmark::{Event, Parser, Tag, TagEnd};

/// The searchable text of a body.
#[derive(Debug, Default, PartialEq)]
pub struct BodyText {
    /// Heading texts, one per line.
    pub headings: String,
    /// All prose, code and list text, headings included, without markup.
    pub text: String,
}

impl BodyText {
    pub(crate) fn from_markdown(markdown: &str) -> BodyText {
        let mut out = BodyText::default();
        let mut in_heading = false;
        for event in Parser::new(markdown) {
            match event {
                Event::Start(Tag::Heading { .. }) => in_heading = true,
                Event::End(TagEnd::Heading(_)) => {
                    in_heading = false;
                    out.headings.push('\n');
                    out.text.push('\n');
                }
                Event::Text(t) | Event::Code(t) => {
                    if in_heading {
                        out.headings.push_str(&t);
                    }
                    out.text.push_str(&t);
                }
                Event::SoftBreak | Event::HardBreak => out.text.push(' '),
                Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::CodeBlock) => {
                    out.text.push('\n')
                }
                _ => {}
            }
        }
        out
    }

    /// The first paragraph of prose, used as a description when the frontmatter has none.
    pub(crate) fn first_paragraph(markdown: &str) -> String {
        let mut para = String::new();
        let mut depth_heading = false;
        for event in Parser::new(markdown) {
            match event {
                Event::Start(Tag::Heading { .. }) => depth_heading = true,
                Event::End(TagEnd::Heading(_)) => depth_heading = false,
                Event::Text(t) | Event::Code(t) if !depth_heading => para.push_str(&t),
                Event::SoftBreak | Event::HardBreak if !para.is_empty() => para.push(' '),
                Event::End(TagEnd::Paragraph) if !para.trim().is_empty() => break,
                _ => {}
            }
        }
        para.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_headings_and_drops_markup() {
        let b = BodyText::from_markdown(
            "# Scope\nYou **review** [code](http://x).\n\n## Steps\n- run `cargo test`\n",
        );
        assert_eq!(b.headings, "Scope\nSteps\n");
        assert!(b.text.contains("You review code."));
        assert!(b.text.contains("run cargo test"));
        assert!(!b.text.contains("http"));
    }

    #[test]
    fn first_paragraph_skips_headings() {
        assert_eq!(
            BodyText::first_paragraph("# T\n\nFixes bugs\nfast.\n\nMore."),
            "Fixes bugs fast."
        );
    }
}
