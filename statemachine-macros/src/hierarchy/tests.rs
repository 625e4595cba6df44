//! Property tests of the lowering of superstates against the statechart rule.

use proptest::prelude::*;

use crate::errors::Errors;
use crate::model::Machine;
use crate::parse::Table;

/// A random nested table: superstate `j` sits inside one of `0..j` or at the top,
/// state `i < supers` inside superstate `i` (so none is empty), the others anywhere;
/// lines with one source (a state or a superstate), an event and maybe a guard.
#[derive(Debug, Clone)]
struct Spec {
    super_parents: Vec<Option<usize>>,
    state_parents: Vec<Option<usize>>,
    /// (source: `Ok(state)` or `Err(superstate)`, event, guarded, target)
    lines: Vec<(Result<usize, usize>, usize, bool, usize)>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (1usize..4, 0usize..5)
        .prop_flat_map(|(supers, extra)| {
            let states = supers + extra + 1;
            let super_parents = (0..supers)
                .map(|j| {
                    if j == 0 {
                        Just(None).boxed()
                    } else {
                        prop::option::of(0..j).boxed()
                    }
                })
                .collect::<Vec<_>>();
            let state_parents = (0..states)
                .map(|i| {
                    if i < supers {
                        Just(Some(i)).boxed()
                    } else {
                        prop::option::of(0..supers).boxed()
                    }
                })
                .collect::<Vec<_>>();
            let source = prop_oneof![(0..states).prop_map(Ok), (0..supers).prop_map(Err)];
            let lines = prop::collection::vec((source, 0usize..3, any::<bool>(), 0..states), 1..14);
            (super_parents, state_parents, lines)
        })
        .prop_map(|(super_parents, state_parents, lines)| Spec {
            super_parents,
            state_parents,
            lines,
        })
}

impl Spec {
    fn source_name(source: Result<usize, usize>) -> String {
        match source {
            Ok(s) => format!("S{s}"),
            Err(u) => format!("U{u}"),
        }
    }

    fn table(&self) -> String {
        let mut items = vec!["version 1;".to_owned()];
        for i in 0..self.state_parents.len() {
            let initial = if i == 0 { "initial " } else { "" };
            items.push(format!("{initial}state S{i};"));
        }
        for j in 0..self.super_parents.len() {
            let mut members: Vec<String> = (0..self.state_parents.len())
                .filter(|&i| self.state_parents[i] == Some(j))
                .map(|i| format!("S{i}"))
                .collect();
            members.extend(
                (0..self.super_parents.len())
                    .filter(|&k| self.super_parents[k] == Some(j))
                    .map(|k| format!("U{k}")),
            );
            items.push(format!(
                "superstate U{j} {{ {} }} entry(enter_u{j}) exit(exit_u{j});",
                members.join(", ")
            ));
        }
        for e in 0..3 {
            items.push(format!("event e{e};"));
        }
        // The line items come last: line `n` is item `first_line + n`.
        for (source, event, guarded, target) in &self.lines {
            let guard = if *guarded { " [g]" } else { "" };
            items.push(format!(
                "{} + e{event}{guard} => S{target};",
                Self::source_name(*source)
            ));
        }
        format!("machine M {{ {} }}", items.join("\n"))
    }

    fn first_line(&self) -> usize {
        1 + self.state_parents.len() + self.super_parents.len() + 3
    }

    /// Superstates around state `s`, innermost first.
    fn around(&self, s: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut at = self.state_parents[s];
        while let Some(u) = at {
            out.push(u);
            at = self.super_parents[u];
        }
        out
    }

    /// The lines tried for (state, event), by line number: the state's own in
    /// written order, then each superstate's from the innermost out, stopping after
    /// the first level that has an unguarded line.
    fn candidates(&self, state: usize, event: usize) -> Vec<usize> {
        let mut levels = vec![Ok(state)];
        levels.extend(self.around(state).into_iter().map(Err));
        let mut out = Vec::new();
        for level in levels {
            let here: Vec<usize> = (0..self.lines.len())
                .filter(|&n| self.lines[n].0 == level && self.lines[n].1 == event)
                .collect();
            let unguarded = here.iter().any(|&n| !self.lines[n].2);
            out.extend(here);
            if unguarded {
                break;
            }
        }
        out
    }
}

fn lower(spec: &Spec) -> (Machine, bool) {
    let tokens: proc_macro2::TokenStream = spec.table().parse().expect("tokens");
    let Ok(Table::Machine(syntax)) = syn::parse2(tokens) else {
        panic!("a machine's table: {}", spec.table());
    };
    assert!(syntax.errors.is_empty(), "{}", spec.table());
    let mut errors = Errors::default();
    let machine = crate::model::lower(&syntax, &mut errors).machine;
    (machine, errors.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every state's candidates for every event are what the statechart rule gives,
    /// and a superstate line is refused exactly when it is no candidate anywhere.
    #[test]
    fn candidates_follow_nesting(spec in spec()) {
        let (machine, clean) = lower(&spec);
        let first = spec.first_line();
        let mut dead = false;
        for (n, (source, ..)) in spec.lines.iter().enumerate() {
            let Err(u) = source else { continue };
            let anywhere = (0..spec.state_parents.len())
                .any(|s| spec.candidates(s, spec.lines[n].1).contains(&n));
            let leaves = (0..spec.state_parents.len()).any(|s| spec.around(s).contains(u));
            prop_assert!(leaves, "superstate U{u} has a state");
            dead |= !anywhere;
        }
        prop_assert_eq!(clean, !dead, "{}", spec.table());
        for state in 0..spec.state_parents.len() {
            for event in 0..3 {
                let expected = spec.candidates(state, event);
                let got: Vec<usize> = machine
                    .candidates(state, event)
                    .map(|t| t.position - first)
                    .collect();
                prop_assert_eq!(&got, &expected, "S{} e{} in {}", state, event, spec.table());
                let mut paired: Vec<usize> = machine.pairs()[state]
                    .iter()
                    .find(|(e, _)| *e == event)
                    .map(|(_, list)| list.iter().map(|t| t.position - first).collect())
                    .unwrap_or_default();
                paired.dedup();
                prop_assert_eq!(&paired, &expected);
            }
        }
    }

    /// A move runs the exit hooks up to (not including) the innermost superstate
    /// that holds both ends, innermost first, then the entry hooks down from there.
    #[test]
    fn hooks_cross_borders_only(spec in spec(), from in 0usize..16, to in 0usize..16) {
        let (machine, _) = lower(&spec);
        let count = spec.state_parents.len();
        let (from, to) = (from % count, to % count);
        let shared = spec.around(from).into_iter().find(|u| spec.around(to).contains(u));
        let left: Vec<String> = spec
            .around(from)
            .into_iter()
            .take_while(|u| Some(*u) != shared)
            .map(|u| format!("exit_u{u}"))
            .collect();
        let mut entered: Vec<String> = spec
            .around(to)
            .into_iter()
            .take_while(|u| Some(*u) != shared)
            .map(|u| format!("enter_u{u}"))
            .collect();
        entered.reverse();
        let (exits, entries) = machine.superstate_hooks(Some(from), to);
        let text = |paths: Vec<&syn::Path>| -> Vec<String> {
            paths.into_iter().map(crate::render::text).collect()
        };
        prop_assert_eq!(text(exits), left);
        prop_assert_eq!(text(entries), entered);
    }
}
