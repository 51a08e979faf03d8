//! Random initial states and calls for the model, with proptest-state-machine.

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use proptest_state_machine::ReferenceStateMachine;

use super::reference::{Call, HANDLES, Model, WAITERS};

/// Timeouts in ticks: none a multiple of 3, so no expiry falls on a check (see the module docs).
const TTLS: [u64; 5] = [2, 4, 5, 7, 8];

/// The reference state machine proptest-state-machine drives.
pub(super) struct LockMachine;

thread_local! {
    /// Whether the backend under test has a waiter queue, so that sequences may step and leave
    /// in it. Set by the runner's thread before it runs (transitions come from a static
    /// function).
    pub(super) static WITH_QUEUE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl ReferenceStateMachine for LockMachine {
    type State = Model;
    type Transition = Call;

    fn init_state() -> BoxedStrategy<Model> {
        proptest::array::uniform4(proptest::sample::select(&TTLS[..]))
            .prop_map(Model::new)
            .boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Call> {
        let h = 0..HANDLES;
        let plain = prop_oneof![
            4 => h.clone().prop_map(Call::Lock),
            3 => h.clone().prop_map(Call::Update),
            3 => h.clone().prop_map(Call::Clear),
            1 => h.clone().prop_map(Call::ForceClear),
            2 => h.prop_map(Call::Status),
            2 => prop_oneof![Just(3u64), Just(6u64)].prop_map(Call::Advance),
        ];
        if !WITH_QUEUE.with(std::cell::Cell::get) {
            return plain.boxed();
        }
        prop_oneof![
            14 => plain,
            4 => (0..WAITERS).prop_map(Call::Step),
            1 => (0..WAITERS).prop_map(Call::Leave),
        ]
        .boxed()
    }

    fn apply(mut state: Model, call: &Call) -> Model {
        state.step(*call);
        state
    }
}
