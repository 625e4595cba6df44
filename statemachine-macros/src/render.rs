//! The canonical text of a type or a path, owned by this crate.
//!
//! Snapshots carry a hash of the table's shape, and the shape includes every field's
//! type and every guard's path as text. That text must never change for the same
//! table, or a compiler upgrade would make stored snapshots unrestorable. So it is not
//! `TokenStream::to_string()`, whose spacing rustc does not promise to keep (it changed
//! in 1.76 and wraps lines longer than 78 characters at places of its choosing), but a
//! printing written out here: syn parses the type, and the tokens of that tree are
//! printed by the rules below, reading nothing from a token but its identifier text,
//! literal text, punctuation character, joint flag and delimiter.
//!
//! The rules reproduce what the earlier `to_string()`-based text gave on rustc 1.95 for
//! every type that rustc did not wrap (checked on 3,000 generated types), so hashes
//! computed before this module existed are unchanged for them. Whitespace in the source
//! does not matter. The golden tests at the end pin the text: a change to any of them
//! changes the shape hash of every machine using that construct, and with it the
//! restorability of its stored snapshots.

use std::hash::Hasher;

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::ToTokens;

/// The shape hash of a canonical text: FNV-1a, 64 bit, over its UTF-8 bytes.
pub(crate) fn hash(text: &str) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(text.as_bytes());
    hasher.finish()
}

/// The canonical text of a type or a path: `Vec<String>`, `&'static str`,
/// `<T as Trait>::Out`, `[u8; 32]`, `checks::in_stock`.
pub(crate) fn text(node: &impl ToTokens) -> String {
    let mut spaced = String::new();
    print(node.to_token_stream(), &mut spaced);
    glue(&spaced)
}

/// What was printed last, for the spacing rules.
#[derive(Clone, Copy, PartialEq)]
enum Last {
    Nothing,
    /// An identifier; `callable` when `(` or `!` after it reads as a call: any
    /// identifier but a keyword, or `fn`, `Self`, `pub`, or a raw identifier.
    Ident {
        callable: bool,
    },
    Literal,
    /// `unary` for a `-` that starts an operand (`-1`), which hugs what follows.
    Punct {
        ch: char,
        joint: bool,
        unary: bool,
    },
    Group,
}

/// Tokens separated by one space, except where Rust source conventionally has none:
/// after a joint punctuation (`::`, `->`, `'a`), before `,` `;` `.` that follow a
/// non-punctuation, after `.`, between a callable name and `(` or `!` (`Fn(u8)`,
/// `fn(u8)`, `m!`), between `#` and `[`, and just inside `(..)` and `[..]`.
fn print(stream: TokenStream, out: &mut String) {
    let mut last = Last::Nothing;
    for tree in stream {
        let space = match (&last, &tree) {
            (Last::Nothing, _) => false,
            (Last::Punct { joint: true, .. }, _) => false,
            (Last::Punct { unary: true, .. }, TokenTree::Literal(_)) => false,
            (Last::Punct { ch: '.', .. }, TokenTree::Punct(_)) => true,
            (Last::Punct { ch: '.', .. }, _) => false,
            (Last::Ident { .. } | Last::Literal | Last::Group, TokenTree::Punct(p))
                if matches!(p.as_char(), ',' | ';' | '.') =>
            {
                false
            }
            (Last::Ident { callable: true }, TokenTree::Group(g))
                if g.delimiter() == Delimiter::Parenthesis =>
            {
                false
            }
            (Last::Ident { callable: true }, TokenTree::Punct(p)) if p.as_char() == '!' => false,
            (Last::Punct { ch: '#', .. }, TokenTree::Group(g))
                if g.delimiter() == Delimiter::Bracket =>
            {
                false
            }
            _ => true,
        };
        if space {
            out.push(' ');
        }
        last = match tree {
            TokenTree::Ident(ident) => {
                let name = ident.to_string();
                let lifetime = matches!(last, Last::Punct { ch: '\'', .. });
                let callable = !lifetime
                    && (name.starts_with("r#")
                        || matches!(name.as_str(), "fn" | "Self" | "pub")
                        || !is_keyword(&name));
                out.push_str(&name);
                Last::Ident { callable }
            }
            TokenTree::Literal(literal) => {
                out.push_str(&literal.to_string());
                Last::Literal
            }
            TokenTree::Punct(punct) => {
                let ch = punct.as_char();
                out.push(ch);
                Last::Punct {
                    ch,
                    joint: punct.spacing() == Spacing::Joint || ch == '\'',
                    unary: ch == '-' && matches!(last, Last::Nothing | Last::Punct { .. }),
                }
            }
            TokenTree::Group(group) => {
                let inner = group.stream();
                match group.delimiter() {
                    Delimiter::Parenthesis => {
                        out.push('(');
                        print(inner, out);
                        out.push(')');
                    }
                    Delimiter::Bracket => {
                        out.push('[');
                        print(inner, out);
                        out.push(']');
                    }
                    Delimiter::Brace if inner.is_empty() => out.push_str("{}"),
                    Delimiter::Brace => {
                        out.push_str("{ ");
                        print(inner, out);
                        out.push_str(" }");
                    }
                    // Invisible delimiters (a type passed through a `macro_rules!`
                    // fragment) print nothing of their own.
                    Delimiter::None => print(inner, out),
                }
                Last::Group
            }
        };
    }
}

/// Rust's strict and reserved keywords (2024 edition), which never read as a call.
fn is_keyword(name: &str) -> bool {
    matches!(
        name,
        "as" | "async"
            | "await"
            | "break"
            | "const"
            | "continue"
            | "crate"
            | "dyn"
            | "else"
            | "enum"
            | "extern"
            | "false"
            | "fn"
            | "for"
            | "gen"
            | "if"
            | "impl"
            | "in"
            | "let"
            | "loop"
            | "match"
            | "mod"
            | "move"
            | "mut"
            | "pub"
            | "ref"
            | "return"
            | "self"
            | "Self"
            | "static"
            | "struct"
            | "super"
            | "trait"
            | "true"
            | "type"
            | "unsafe"
            | "use"
            | "where"
            | "while"
            | "abstract"
            | "become"
            | "box"
            | "do"
            | "final"
            | "macro"
            | "override"
            | "priv"
            | "typeof"
            | "unsized"
            | "virtual"
            | "yield"
            | "try"
    )
}

/// The last step, kept from the text's first version so that its hashes hold: drop the
/// space after `<` `:` `&` `(` `[` `'` and before `<` `>` `:` `,` `)` `]` `;`.
fn glue(spaced: &str) -> String {
    let mut out = String::with_capacity(spaced.len());
    let mut chars = spaced.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' {
            let prev = out.chars().last();
            let next = chars.peek().copied();
            let glue_after = matches!(prev, Some('<' | ':' | '&' | '(' | '[' | '\''));
            let glue_before = matches!(next, Some('<' | '>' | ':' | ',' | ')' | ']' | ';'));
            if glue_after || glue_before {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{hash, text};

    fn type_text(source: &str) -> String {
        let ty: syn::Type = syn::parse_str(source).expect("a type");
        text(&ty)
    }

    /// Pinned: each line is part of some stored snapshot's shape hash. The expected
    /// texts are what the first, `to_string()`-based rendering gave on rustc 1.95.
    #[test]
    fn golden_type_texts() {
        let cases = [
            // generic
            ("Vec<String>", "Vec<String>"),
            ("HashMap<u32, String>", "HashMap<u32, String>"),
            ("Cow<'static, str>", "Cow<'static, str>"),
            ("Foo<3>", "Foo<3>"),
            ("Foo<{ N + 1 }>", "Foo<{ N + 1 }>"),
            ("Vec::<u8>", "Vec::<u8>"),
            (
                "Box<dyn Iterator<Item = u8>>",
                "Box<dyn Iterator<Item = u8>>",
            ),
            // references and pointers
            ("&'a str", "&'a str"),
            ("&'static str", "&'static str"),
            ("&mut T", "&mut T"),
            ("&'a mut [&'b str]", "&'a mut [&'b str]"),
            ("&'a (u8, u16)", "&'a (u8, u16)"),
            ("*const u8", "* const u8"),
            // qualified paths
            ("<T as Trait>::Out", "<T as Trait>::Out"),
            (
                "<Vec<T> as IntoIterator>::Item",
                "<Vec<T> as IntoIterator>::Item",
            ),
            ("<T>::Out", "<T>::Out"),
            ("::std::string::String", "::std::string::String"),
            (
                "std::collections::HashMap<u32, &'static str>",
                "std::collections::HashMap<u32, &'static str>",
            ),
            ("crate::model::Item", "crate::model::Item"),
            ("r#type", "r#type"),
            // nested
            ("Option<Vec<u8>>", "Option<Vec<u8>>"),
            (
                "Rc<RefCell<Vec<Weak<Node>>>>",
                "Rc<RefCell<Vec<Weak<Node>>>>",
            ),
            (
                "HashMap<String, Vec<(u32, f64)>>",
                "HashMap<String, Vec<(u32, f64)>>",
            ),
            ("[[u8; 4]; 4]", "[[u8; 4]; 4]"),
            ("Foo<[u8; 2 * N]>", "Foo<[u8; 2 * N]>"),
            (
                "Option<Box<dyn std::error::Error + Send + Sync + 'static>>",
                "Option<Box<dyn std::error::Error + Send + Sync + 'static>>",
            ),
            // functions, tuples, the rest
            ("fn(u8) -> bool", "fn(u8) -> bool"),
            ("fn()", "fn()"),
            ("PhantomData<fn() -> T>", "PhantomData<fn() -> T>"),
            (
                "Box<dyn Fn(u8) -> u8 + Send>",
                "Box<dyn Fn(u8) -> u8 + Send>",
            ),
            (
                "for<'a> fn(&'a u8) -> &'a u8",
                "for<'a> fn(&'a u8) -> &'a u8",
            ),
            ("unsafe extern \"C\" fn(u8)", "unsafe extern \"C\" fn(u8)"),
            ("()", "()"),
            ("(u8,)", "(u8,)"),
            ("(u32, String)", "(u32, String)"),
            ("[u8]", "[u8]"),
            ("!", "!"),
            ("m!(u8)", "m! (u8)"),
            ("Foo<-1>", "Foo<-1>"),
        ];
        for (source, expected) in cases {
            assert_eq!(type_text(source), expected, "the text of `{source}`");
        }
    }

    #[test]
    fn how_the_table_was_spaced_does_not_matter() {
        for (spaced, canonical) in [
            ("Vec < String >", "Vec<String>"),
            ("HashMap<u32,String>", "HashMap<u32, String>"),
            ("& 'a   str", "&'a str"),
            ("Option<Vec<u8> >", "Option<Vec<u8>>"),
            ("std :: string :: String", "std::string::String"),
            ("[ u8 ;32 ]", "[u8; 32]"),
            ("Box<dyn Fn(u8)->u8>", "Box<dyn Fn(u8) -> u8>"),
            ("fn( u8 )->bool", "fn(u8) -> bool"),
            ("<T as\n Trait>::Out", "<T as Trait>::Out"),
        ] {
            assert_eq!(type_text(spaced), canonical, "the text of `{spaced}`");
        }
    }

    #[test]
    fn long_types_stay_on_one_line() {
        // rustc's printer wrapped token streams at 78 columns; the canonical text never
        // contains a line break, however long the type.
        let long = "std::collections::BTreeMap<String, std::collections::BTreeMap<String, \
                    std::collections::BTreeMap<String, Vec<(u64, Option<String>)>>>>";
        assert_eq!(type_text(long), long);
    }

    #[test]
    fn paths_for_guards_and_actions() {
        for (source, expected) in [
            ("checks::in_stock", "checks::in_stock"),
            ("::checks::in_stock", "::checks::in_stock"),
            ("Self::ready", "Self::ready"),
            ("rules::limit::<3>", "rules::limit::<3>"),
        ] {
            let path: syn::Path = syn::parse_str(source).expect("a path");
            assert_eq!(text(&path), expected, "the text of `{source}`");
        }
    }

    #[test]
    fn hash_is_fnv1a_64() {
        // From the FNV reference: http://www.isthe.com/chongo/tech/comp/fnv/
        assert_eq!(hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash("foobar"), 0x8594_4171_f739_67e8);
    }
}
