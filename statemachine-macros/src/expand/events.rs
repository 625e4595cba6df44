//! One payload type per event, and the event enum of the dynamic view.

use quote::{quote, quote_spanned};

use super::{Context, Generated, has_docs, public_field, serde_derives};

/// The payload types (`Ship { tracking }`, `Deliver`) and `OrderEvent`.
pub(super) fn expand(ctx: &Context<'_>, out: &mut Generated) {
    let machine = ctx.machine;
    let vis = ctx.vis();
    let name = &machine.name;
    let event_enum = machine.event_enum_name();
    let derives = &machine.derives;
    let serde = serde_derives();

    let mut variants = Vec::new();
    let mut names = Vec::new();
    let mut serialize_arms = Vec::new();
    let enum_name_text = event_enum.to_string();
    for (event_index, event) in machine.events.iter().enumerate() {
        let type_name = &event.type_name;
        let attrs = &event.attrs;
        let event_name = event.name.to_string();
        let mut summary = String::new();
        if has_docs(attrs) {
            summary.push('\n');
        }
        let sources: Vec<String> = machine
            .states
            .iter()
            .enumerate()
            .filter(|(i, _)| ctx.route(*i, event_index).is_some())
            .map(|(_, s)| format!("`{}`", s.name))
            .collect();
        summary.push_str(&format!(
            "The payload of event `{event_name}` of [`{name}`], taken in {}.",
            sources.join(", ")
        ));
        let span = event.name.span();
        let body = if event.fields.is_empty() {
            quote_spanned!(span=> ;)
        } else {
            let owner = format!("event `{event_name}`");
            let fields = event.fields.iter().map(|f| public_field(f, &owner));
            quote_spanned!(span=> { #(#fields,)* })
        };
        let variant_doc = format!("Event `{event_name}`.");
        // The whole item but the user's own tokens is spanned at the event's name: the
        // compiler points there when it shows the type.
        let bare = super::is_bare(attrs, &event.fields);
        let own_serde = if bare {
            out.hidden
                .extend(super::bare_serde(type_name, &type_name.to_string()));
            quote!()
        } else {
            serde.clone()
        };
        let header = super::respan(
            quote!(#(#derives)* #own_serde #vis struct),
            event.name.span(),
        );
        out.items.extend(quote_spanned! {event.name.span()=>
            #(#attrs)*
            #[doc = #summary]
            #header #type_name #body
        });
        out.hidden.extend(quote! {
            #[automatically_derived]
            impl ::core::convert::From<#type_name> for #event_enum {
                #[inline]
                fn from(event: #type_name) -> Self {
                    Self::#type_name(event)
                }
            }
        });
        variants.push(quote! {
            #[doc = #variant_doc]
            #[serde(rename = #event_name)]
            #type_name(#type_name)
        });
        names.push(quote!(Self::#type_name(_) => #event_name));
        let variant_index = u32::try_from(event_index).unwrap_or(u32::MAX);
        serialize_arms.push(quote! {
            Self::#type_name(ref __payload) => ::statemachine::__private::serialize_event(
                __serializer, #enum_name_text, #variant_index, #event_name, __payload,
            ),
        });
    }

    let enum_doc = format!(
        "Any event of [`{name}`], for events that arrive at run time; see [`Any{name}::fire`].\n\n\
         As JSON: `{{\"event\": \"<name>\", \"payload\": {{ <fields> }}}}`."
    );
    out.items.extend(quote_spanned! {machine.name.span()=>
        #[doc = #enum_doc]
        #(#derives)*
        #[derive(::statemachine::__private::serde::Deserialize)]
        #[serde(crate = "::statemachine::__private::serde")]
        #[serde(tag = "event", content = "payload")]
        #[allow(clippy::large_enum_variant, dead_code)]
        #vis enum #event_enum {
            #(#variants,)*
        }
    });
    out.hidden.extend(quote! {
        #[allow(dead_code)]
        impl #event_enum {
            /// The event's name, as written in the table.
            #[inline]
            pub fn name(&self) -> &'static str {
                match *self {
                    #(#names,)*
                }
            }
        }

        // What serde's derive would write for `tag = "event", content = "payload"`,
        // through one shared function instead of a block per variant.
        #[automatically_derived]
        impl ::statemachine::__private::serde::Serialize for #event_enum {
            fn serialize<__S: ::statemachine::__private::serde::Serializer>(
                &self,
                __serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                match *self {
                    #(#serialize_arms)*
                }
            }
        }

        #[automatically_derived]
        impl ::statemachine::__private::SealedEvent for #event_enum {}

        #[automatically_derived]
        impl ::statemachine::Event for #event_enum {
            #[inline]
            fn name(&self) -> &'static str {
                #event_enum::name(self)
            }
        }
    });
}
