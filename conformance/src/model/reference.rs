//! The reference model: what Redis does, as a pure function.

/// Handles in a sequence; handle `h` locks name `h % NAMES`, so two handles share each name.
pub(super) const HANDLES: usize = 4;
/// Names in a sequence.
pub(super) const NAMES: usize = 2;

/// The name handle `h` works on.
pub(super) fn name_of(h: usize) -> usize {
    h % NAMES
}

/// A held lock in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Held {
    pub(super) owner: usize,
    /// The last tick at which the lock is alive (Redis keeps a key while `now <= expiry`).
    pub(super) expires_at: u64,
}

/// The model: each handle's timeout, the logical time, and who holds each name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Model {
    /// Timeout of each handle, in ticks.
    pub(super) ttls: [u64; HANDLES],
    /// Logical time, in ticks.
    pub(super) now: u64,
    locks: [Option<Held>; NAMES],
}

/// One step of a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    Lock(usize),
    Update(usize),
    Clear(usize),
    ForceClear(usize),
    Status(usize),
    /// Move time forward by this many ticks.
    Advance(u64),
}

/// What the system under test must answer to a [`Call`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    Bool(bool),
    /// `clear`: `Some(true)` cleared, `Some(false)` not the owner, `None` did not exist.
    Cleared(Option<bool>),
    Locked(bool),
    Nothing,
}

impl Model {
    pub(super) fn new(ttls: [u64; HANDLES]) -> Self {
        Model {
            ttls,
            now: 0,
            locks: [None; NAMES],
        }
    }

    fn live(&self, name: usize) -> Option<Held> {
        self.locks[name].filter(|held| self.now <= held.expires_at)
    }

    fn set(&mut self, h: usize) {
        self.locks[name_of(h)] = Some(Held {
            owner: h,
            expires_at: self.now + self.ttls[h],
        });
    }

    /// Applies `call`, returning what the store must answer.
    pub(super) fn step(&mut self, call: Call) -> Answer {
        match call {
            Call::Lock(h) => match self.live(name_of(h)) {
                Some(held) if held.owner != h => Answer::Bool(false),
                _ => {
                    self.set(h);
                    Answer::Bool(true)
                }
            },
            Call::Update(h) => match self.live(name_of(h)) {
                Some(held) if held.owner == h => {
                    self.set(h);
                    Answer::Bool(true)
                }
                _ => Answer::Bool(false),
            },
            Call::Clear(h) => match self.live(name_of(h)) {
                None => Answer::Cleared(None),
                Some(held) if held.owner != h => Answer::Cleared(Some(false)),
                Some(_) => {
                    self.locks[name_of(h)] = None;
                    Answer::Cleared(Some(true))
                }
            },
            Call::ForceClear(h) => match self.live(name_of(h)) {
                None => Answer::Cleared(None),
                Some(_) => {
                    self.locks[name_of(h)] = None;
                    Answer::Cleared(Some(true))
                }
            },
            Call::Status(h) => Answer::Locked(self.live(name_of(h)).is_some()),
            Call::Advance(ticks) => {
                self.now += ticks;
                Answer::Nothing
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_exclusive_of_the_next_check() {
        let mut m = Model::new([2, 4, 5, 7]);
        assert_eq!(m.step(Call::Lock(0)), Answer::Bool(true));
        assert_eq!(m.step(Call::Lock(2)), Answer::Bool(false));
        assert_eq!(m.step(Call::Advance(3)), Answer::Nothing);
        assert_eq!(m.step(Call::Status(0)), Answer::Locked(false));
        assert_eq!(m.step(Call::Update(0)), Answer::Bool(false));
        assert_eq!(m.step(Call::Lock(2)), Answer::Bool(true));
        assert_eq!(m.step(Call::Clear(0)), Answer::Cleared(Some(false)));
        assert_eq!(m.step(Call::ForceClear(0)), Answer::Cleared(Some(true)));
        assert_eq!(m.step(Call::Clear(0)), Answer::Cleared(None));
    }
}
