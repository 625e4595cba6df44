//! The dynamic view `AnyOrder`: one variant per state, `fire` for events that arrive at
//! run time, and conversions both ways between typed and dynamic machines.

use proc_macro2::TokenStream;
use quote::quote;

use super::{Context, Generated};

/// `AnyOrder`, its `fire`, `StateMachine` impl and the typed conversions.
pub(super) fn expand(ctx: &Context<'_>, out: &mut Generated) {
    let machine = ctx.machine;
    let vis = ctx.vis();
    let name = &machine.name;
    let any = machine.any_name();
    let event_enum = machine.event_enum_name();
    let derives = &machine.derives;
    let data = &ctx.data;
    let reason = &ctx.reason;
    let machine_name = name.to_string();
    let state_trait = machine.state_trait_name();

    let states: Vec<_> = machine.states.iter().map(|s| &s.name).collect();
    let payloads: Vec<_> = machine.events.iter().map(|e| &e.type_name).collect();
    let version = machine.version;
    let state_texts = states.iter().map(ToString::to_string);
    // A bare state's snapshot is one call for all of them, by name (see
    // `__private::bare`); a state with fields snapshots through its typed machine.
    let fielded: Vec<_> = machine
        .states
        .iter()
        .filter(|s| !super::is_bare_state(s))
        .map(|s| &s.name)
        .collect();
    let bare_snapshot = (fielded.len() < states.len()).then(|| {
        quote! {
            _ => ::statemachine::__private::bare::snapshot(
                &__DATA,
                Self::DEFINITION,
                self.id(),
                self.seq(),
                self.state_name(),
                self.data(),
            ),
        }
    });
    let restore = super::restore::methods(ctx);
    let restore_trait = super::restore::trait_methods(ctx);
    let replay_older = super::migration::replay_older(ctx);
    let variant_docs = states.iter().map(|s| format!("`{name}` in state `{s}`."));
    let allowed = machine.states.iter().enumerate().map(|(index, _)| {
        let events = ctx.routes[index]
            .iter()
            .map(|route| machine.events[route.event].name.to_string());
        quote!(&[#(#events),*])
    });
    let is_final = machine.states.iter().map(|s| s.final_span.is_some());
    // A table of timers alone has no events: its event enum is empty.
    let payload_arms = payload_arms(ctx);
    let payload_of = if payloads.is_empty() {
        quote!(match __event {})
    } else {
        quote! {
            match &__event {
                #(#payload_arms)*
            }
        }
    };
    let (timers, timer_methods) = super::timers::any_methods(ctx);
    let (task, task_methods) = super::tasks::any_methods(ctx);
    // With bare moves in the table, `fire` looks them up and keeps the full match out of
    // line, called only for the pairs that need it (none when every pair is a bare move
    // or a refusal); without, `fire` is the full match.
    let fast = super::dispatch::fast_path(ctx);
    let has_fast = fast.is_some();
    let (fast_items, fire_body, full_inline) = match fast {
        Some(fast) => (fast.items, fast.body, quote!(#[inline(never)])),
        None => (
            TokenStream::new(),
            quote!(self.__fire_full(__event)),
            quote!(#[inline(always)]),
        ),
    };

    let mut arms = TokenStream::new();
    for (state_index, state) in machine.states.iter().enumerate() {
        let state_name = &state.name;
        for route in &ctx.routes[state_index] {
            let event = &machine.events[route.event];
            let payload = &event.type_name;
            // A bare move goes through the look-up's code, as `fire` does, so the
            // transition's typed steps are compiled only where a typed method calls them.
            if let Some(target) = super::dispatch::bare_target(ctx, state_index, route.event)
                && has_fast
            {
                let target = &machine.states[target].name;
                let event_index = route.event;
                arms.extend(quote! {
                    (__machine @ #any::#state_name(_), __event @ #event_enum::#payload(_)) =>
                        __machine.__fire_bare(#state_index, #event_index, __Tag::#target, __event),
                });
                continue;
            }
            let into_any = match route.targets.as_slice() {
                [target] => {
                    let target = &machine.states[*target].name;
                    quote!(#any::#target(__next))
                }
                _ => quote!(__next),
            };
            // Each arm checks, cheaply, whether anyone listens; recording is out of line
            // (`__record_*`), so the arms stay small.
            let steps = super::transitions::steps_path(ctx, state_index, route.event);
            let call = quote!(#steps::__take(__machine, __event));
            let arm = if route.refusable {
                quote! {
                    match #call {
                        ::core::result::Result::Ok(__next) => ::core::result::Result::Ok(#into_any),
                        ::core::result::Result::Err(__rejected) => ::core::result::Result::Err(
                            __rejected.map(#any::#state_name, #event_enum::#payload),
                        ),
                    }
                }
            } else {
                quote! {{
                    let __next = #call;
                    ::core::result::Result::Ok(#into_any)
                }}
            };
            arms.extend(quote! {
                (#any::#state_name(__machine), #event_enum::#payload(__event)) => #arm,
            });
        }
    }

    let any_doc = format!(
        "An `{name}` in any state: the dynamic view, for events that arrive at run time.\n\n\
         Convert a typed machine with `From`/`Into`, and back with `TryFrom`; apply any \
         [`{event_enum}`] with [`fire`](Self::fire)."
    );
    // A primitive representation puts every variant's fields at the same offsets after
    // the tag, which lets the optimiser see a bare move as a store of the new tag (see
    // `dispatch`).
    let any_repr = if machine.states.len() <= 256 {
        quote!(#[repr(u8)])
    } else {
        quote!(#[repr(u16)])
    };
    let definition_doc = format!("The transition table of `{name}` as data.");
    // Spanned at the machine's name: the compiler points there when it shows the type.
    out.items.extend(quote::quote_spanned! {name.span()=>
        #[doc = #any_doc]
        #(#derives)*
        #[allow(clippy::large_enum_variant, dead_code)]
        #any_repr
        #vis enum #any {
            #(
                #[doc = #variant_docs]
                #states(#name<#states>),
            )*
        }
    });
    out.hidden.extend(quote! {
        #[allow(dead_code)]
        impl #any {
            #[doc = #definition_doc]
            pub const DEFINITION: &'static ::statemachine::Definition = &Self::__DEFINITION;

            /// The instance, the sequence number and the shared data, whatever the
            /// state: one match for the accessors below.
            #[inline(always)]
            fn __shared(&self) -> (&::statemachine::__private::Instance, u64, &#data) {
                match self {
                    #(Self::#states(__machine) => __machine.0.shared(),)*
                }
            }

            /// The instance's identifier.
            #[inline]
            pub fn id(&self) -> &::statemachine::InstanceId {
                self.__shared().0.id()
            }

            /// How many transitions this instance has taken since it was created.
            #[inline]
            pub fn seq(&self) -> u64 {
                self.__shared().1
            }

            /// The data every state carries.
            #[inline]
            pub fn data(&self) -> &#data {
                self.__shared().2
            }

            /// The current state's name, as written in the table.
            #[inline]
            pub fn state_name(&self) -> &'static str {
                match self {
                    #(Self::#states(_) => #state_texts,)*
                }
            }

            /// The events the current state takes, in declaration order (guards may
            /// still refuse them).
            #[inline]
            pub fn allowed_events(&self) -> &'static [&'static str] {
                match self {
                    #(Self::#states(_) => #allowed,)*
                }
            }

            /// The instance's audit context: its observers, clock, actor and correlation id.
            #[inline]
            pub fn audit(&self) -> &::statemachine::Audit {
                self.__shared().0.audit()
            }

            /// The instance's audit context, to add observers or say who acts.
            #[inline]
            pub fn audit_mut(&mut self) -> &mut ::statemachine::Audit {
                match self {
                    #(Self::#states(__machine) => __machine.0.audit_mut(),)*
                }
            }

            /// The observers of every instance of this machine: each sees every audit
            /// record, synchronously.
            #[inline]
            pub fn observers() -> &'static ::statemachine::Registry {
                static OBSERVERS: ::statemachine::Registry = ::statemachine::Registry::new();
                &OBSERVERS
            }

            /// The machine's value as a [`Snapshot`](::statemachine::Snapshot).
            ///
            /// # Errors
            ///
            /// When the shared data or the state's data does not serialize to JSON.
            pub fn snapshot(&self) -> ::core::result::Result<::statemachine::Snapshot, ::statemachine::SnapshotError> {
                match self {
                    #(Self::#fielded(__machine) => __machine.snapshot(),)*
                    #bare_snapshot
                }
            }

            #restore

            #timers

            #task

            /// Whether the current state is final.
            #[inline]
            pub fn is_final(&self) -> bool {
                match self {
                    #(Self::#states(_) => #is_final,)*
                }
            }

            /// Applies an event of any kind: the transition the table gives for the current
            /// state and this event, exactly as the typed method would.
            ///
            /// # Errors
            ///
            /// The machine and the event come back unchanged in
            /// [`Rejected`](::statemachine::Rejected): with
            /// [`Refusal::NotAllowed`](::statemachine::Refusal::NotAllowed) and the events
            /// that are valid when the table has no such transition, with
            /// [`Refusal::Guard`](::statemachine::Refusal::Guard) when a guard refused.
            #[allow(clippy::type_complexity)]
            #[inline]
            pub fn fire(
                self,
                event: impl ::core::convert::Into<#event_enum>,
            ) -> ::core::result::Result<Self, ::statemachine::Rejected<Self, #event_enum, #reason>> {
                let __event: #event_enum = ::core::convert::Into::into(event);
                #fire_body
            }

            /// `fire` by the full match over the table's routes: every recorded
            /// transition, and the routes with guards, actions, hooks or data.
            #[allow(clippy::type_complexity)]
            #full_inline
            fn __fire_full(
                self,
                __event: #event_enum,
            ) -> ::core::result::Result<Self, ::statemachine::Rejected<Self, #event_enum, #reason>> {
                #[allow(unreachable_patterns, unreachable_code)]
                match (self, __event) {
                    #arms
                    (__machine, __event) => __not_allowed(__machine, __event),
                }
            }
        }

        #fast_items

        /// Refuses an event the current state does not take, recording the refusal when
        /// anyone listens. Out of line: the table's transitions are the hot path.
        #[cold]
        #[inline(never)]
        #[allow(clippy::type_complexity, unreachable_code)]
        fn __not_allowed(
            __machine: #any,
            __event: #event_enum,
        ) -> ::core::result::Result<#any, ::statemachine::Rejected<#any, #event_enum, #reason>> {
                let __refusal = ::statemachine::Refusal::NotAllowed {
                    machine: #machine_name,
                    state: __machine.state_name(),
                    event: __event.name(),
                    allowed: __machine.allowed_events(),
                };
                if let ::core::option::Option::Some(__recorder) =
                    ::statemachine::__private::Recorder::new(__machine.audit(), #any::observers())
                {
                    let __payload = #payload_of;
                    __recorder.record(
                        ::statemachine::__private::Happened {
                            machine: #machine_name,
                            version: #version,
                            id: __machine.id(),
                            seq: __machine.seq(),
                            kind: ::statemachine::__private::RecordKind::Refused,
                            from: ::core::option::Option::Some(__machine.state_name()),
                            event: ::core::option::Option::Some(__event.name()),
                            to: ::core::option::Option::None,
                            guard: ::core::option::Option::None,
                            reason: ::core::option::Option::Some(
                                ::statemachine::__private::not_allowed_text(
                                    #machine_name,
                                    __machine.state_name(),
                                    __event.name(),
                                    __machine.allowed_events(),
                                ),
                            ),
                        },
                        __payload,
                    );
                }
                ::core::result::Result::Err(::statemachine::Rejected::new(__machine, __event, __refusal))
        }

        #[automatically_derived]
        impl ::statemachine::__private::Stepped for #any {
            #[inline]
            fn stepped(&self) -> ::statemachine::__private::StepResult {
                ::statemachine::__private::StepResult::Moved {
                    seq: self.seq(),
                    to: self.state_name(),
                }
            }
        }

        #[automatically_derived]
        impl ::statemachine::__private::SealedMachine for #any {}

        #[automatically_derived]
        impl ::statemachine::StateMachine for #any {
            type Data = #data;
            type Event = #event_enum;
            type Reason = #reason;

            const DEFINITION: &'static ::statemachine::Definition = #any::DEFINITION;

            #replay_older

            #[inline]
            fn id(&self) -> &::statemachine::InstanceId {
                #any::id(self)
            }

            #[inline]
            fn seq(&self) -> u64 {
                #any::seq(self)
            }

            #[inline]
            fn state_name(&self) -> &'static str {
                #any::state_name(self)
            }

            #[inline]
            fn data(&self) -> &Self::Data {
                #any::data(self)
            }

            #[inline]
            fn fire(
                self,
                event: Self::Event,
            ) -> ::core::result::Result<Self, ::statemachine::Rejected<Self, Self::Event, Self::Reason>> {
                #any::fire(self, event)
            }

            #[inline]
            fn audit(&self) -> &::statemachine::Audit {
                #any::audit(self)
            }

            #[inline]
            fn audit_mut(&mut self) -> &mut ::statemachine::Audit {
                #any::audit_mut(self)
            }

            fn observers() -> &'static ::statemachine::Registry {
                #any::observers()
            }

            fn snapshot(&self) -> ::core::result::Result<::statemachine::Snapshot, ::statemachine::SnapshotError> {
                #any::snapshot(self)
            }

            #restore_trait

            #timer_methods

            #task_methods
        }

        #[automatically_derived]
        impl<S: #state_trait> ::core::convert::From<#name<S>> for #any {
            #[inline]
            fn from(machine: #name<S>) -> Self {
                S::__into_any(machine)
            }
        }

        #[automatically_derived]
        impl<S: #state_trait> ::core::convert::TryFrom<#any> for #name<S> {
            type Error = ::statemachine::WrongState<#any>;

            #[inline]
            fn try_from(machine: #any) -> ::core::result::Result<Self, Self::Error> {
                S::__from_any(machine).map_err(|__other| {
                    let __found = __other.state_name();
                    ::statemachine::WrongState::new(__other, #machine_name, S::NAME, __found)
                })
            }
        }
    });
}

/// The arms of a match on a reference to the event enum that hand the event's payload to
/// `__recorder`. A bare event's payload is `null`, as `()`'s is (see `transitions`), so
/// the recorder is not instantiated for its type.
pub(super) fn payload_arms(ctx: &Context<'_>) -> Vec<TokenStream> {
    let event_enum = ctx.machine.event_enum_name();
    ctx.machine
        .events
        .iter()
        .map(|event| {
            let payload = &event.type_name;
            if super::is_bare(&event.attrs, &event.fields) {
                quote!(#event_enum::#payload(_) => __recorder.payload(&()),)
            } else {
                quote!(#event_enum::#payload(__payload) => __recorder.payload(__payload),)
            }
        })
        .collect()
}
