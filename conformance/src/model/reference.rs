//! The reference model: what Redis does, as a pure function.

/// Handles in a sequence; handle `h` locks name `h % NAMES`, so two handles share each name.
pub(super) const HANDLES: usize = 4;
/// Names in a sequence.
pub(super) const NAMES: usize = 2;

/// Queued waiters in a sequence, driven by hand through the backend's queue calls; waiter `w`
/// waits for name `w % NAMES`. A waiter that stops stepping is dead: its place lapses.
pub(super) const WAITERS: usize = 4;
/// A waiter's timeout, once it holds the lock, in ticks.
pub(super) const WAITER_TTL: u64 = 7;
/// How long a waiter's place lasts after its last step, in ticks.
pub(super) const LEASE: u64 = 5;
/// How long a lock handed to a waiter lasts before the waiter confirms it, in ticks.
pub(super) const CLAIM: u64 = 2;
/// How long a name's queue lasts after a waiter's last step, in ticks: Redis expires the
/// queue's keys twice a lease after the last step, with every place in them, lapsed or not.
pub(super) const QUEUE_LIFE: u64 = 2 * LEASE;

/// The name handle `h` (or waiter `h`) works on.
pub(super) fn name_of(h: usize) -> usize {
    h % NAMES
}

/// Who holds a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    Handle(usize),
    Waiter(usize),
}

/// A held lock in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Held {
    pub(super) owner: Owner,
    /// The last tick at which the lock is alive (Redis keeps a key while `now <= expiry`).
    pub(super) expires_at: u64,
}

/// The model: each handle's timeout, the logical time, who holds each name, and who queues
/// for it (in arrival order, each with the last tick its place is alive, and the last tick the
/// queue itself is alive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Model {
    /// Timeout of each handle, in ticks.
    pub(super) ttls: [u64; HANDLES],
    /// Logical time, in ticks.
    pub(super) now: u64,
    locks: [Option<Held>; NAMES],
    queues: [Vec<(usize, u64)>; NAMES],
    queue_expiry: [u64; NAMES],
}

/// One step of a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    Lock(usize),
    Update(usize),
    Clear(usize),
    ForceClear(usize),
    Status(usize),
    /// Waiter `w` steps in the queue (joins, keeps its place, takes or confirms the lock).
    Step(usize),
    /// Waiter `w` leaves the queue, releasing a lock handed to it.
    Leave(usize),
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
    /// A step: `None` acquired, `Some(place)` queued at that place.
    Step(Option<u64>),
    /// A leave: `Left`, `Absent` or `Released`.
    Leave(&'static str),
    Nothing,
}

impl Model {
    pub(super) fn new(ttls: [u64; HANDLES]) -> Self {
        Model {
            ttls,
            now: 0,
            locks: [None; NAMES],
            queues: [Vec::new(), Vec::new()],
            queue_expiry: [0; NAMES],
        }
    }

    /// Drops the queues whose keys expired: a lapsed place no step evicted goes with them.
    fn expire_queues(&mut self) {
        for name in 0..NAMES {
            if self.now > self.queue_expiry[name] {
                self.queues[name].clear();
            }
        }
    }

    /// Drops the waiters of `name` whose place lapsed.
    fn evict(&mut self, name: usize) {
        let now = self.now;
        self.queues[name].retain(|&(_, lease)| lease >= now);
    }

    /// With `name` free: hands it to its first live waiter, for the claim time.
    fn hand_on(&mut self, name: usize) -> Option<usize> {
        while !self.queues[name].is_empty() {
            let (w, lease) = self.queues[name].remove(0);
            if lease >= self.now {
                self.locks[name] = Some(Held {
                    owner: Owner::Waiter(w),
                    expires_at: self.now + CLAIM.min(WAITER_TTL),
                });
                return Some(w);
            }
        }
        None
    }

    /// Frees `name` and hands it on.
    fn free(&mut self, name: usize) {
        self.locks[name] = None;
        self.evict(name);
        self.hand_on(name);
    }

    /// Queues waiter `w` (keeping its place) with a fresh lease; returns its place.
    fn enqueue(&mut self, w: usize) -> u64 {
        let (name, now) = (name_of(w), self.now);
        self.queue_expiry[name] = self.queue_expiry[name].max(now + QUEUE_LIFE);
        let queue = &mut self.queues[name];
        match queue.iter().position(|&(x, _)| x == w) {
            Some(at) => queue[at].1 = now + LEASE,
            None => queue.push((w, now + LEASE)),
        }
        self.place(w)
    }

    fn place(&self, w: usize) -> u64 {
        let queue = &self.queues[name_of(w)];
        queue.iter().position(|&(x, _)| x == w).unwrap_or(0) as u64
    }

    fn dequeue(&mut self, w: usize) -> bool {
        let queue = &mut self.queues[name_of(w)];
        let before = queue.len();
        queue.retain(|&(x, _)| x != w);
        queue.len() < before
    }

    fn step_waiter(&mut self, w: usize) -> Answer {
        let name = name_of(w);
        self.evict(name);
        match self.live(name) {
            Some(held) if held.owner == Owner::Waiter(w) => {
                self.dequeue(w);
                self.hold_waiter(w);
                Answer::Step(None)
            }
            Some(_) => Answer::Step(Some(self.enqueue(w))),
            None => match self.queues[name].first() {
                Some(&(head, _)) if head != w => {
                    self.enqueue(w);
                    if self.hand_on(name) == Some(w) {
                        self.hold_waiter(w);
                        return Answer::Step(None);
                    }
                    Answer::Step(Some(self.place(w)))
                }
                _ => {
                    self.dequeue(w);
                    self.hold_waiter(w);
                    Answer::Step(None)
                }
            },
        }
    }

    fn hold_waiter(&mut self, w: usize) {
        self.locks[name_of(w)] = Some(Held {
            owner: Owner::Waiter(w),
            expires_at: self.now + WAITER_TTL,
        });
    }

    fn live(&self, name: usize) -> Option<Held> {
        self.locks[name].filter(|held| self.now <= held.expires_at)
    }

    fn set(&mut self, h: usize) {
        self.locks[name_of(h)] = Some(Held {
            owner: Owner::Handle(h),
            expires_at: self.now + self.ttls[h],
        });
    }

    /// Applies `call`, returning what the store must answer.
    pub(super) fn step(&mut self, call: Call) -> Answer {
        self.expire_queues();
        match call {
            Call::Lock(h) => match self.live(name_of(h)) {
                Some(held) if held.owner != Owner::Handle(h) => Answer::Bool(false),
                Some(_) => {
                    self.set(h);
                    Answer::Bool(true)
                }
                // No barging: a free lock goes to the first live waiter.
                None => {
                    self.evict(name_of(h));
                    if self.hand_on(name_of(h)).is_some() {
                        return Answer::Bool(false);
                    }
                    self.set(h);
                    Answer::Bool(true)
                }
            },
            Call::Update(h) => match self.live(name_of(h)) {
                Some(held) if held.owner == Owner::Handle(h) => {
                    self.set(h);
                    Answer::Bool(true)
                }
                _ => Answer::Bool(false),
            },
            Call::Clear(h) => match self.live(name_of(h)) {
                None => Answer::Cleared(None),
                Some(held) if held.owner != Owner::Handle(h) => Answer::Cleared(Some(false)),
                Some(_) => {
                    self.free(name_of(h));
                    Answer::Cleared(Some(true))
                }
            },
            Call::ForceClear(h) => match self.live(name_of(h)) {
                None => Answer::Cleared(None),
                Some(_) => {
                    self.free(name_of(h));
                    Answer::Cleared(Some(true))
                }
            },
            Call::Status(h) => Answer::Locked(self.live(name_of(h)).is_some()),
            Call::Step(w) => self.step_waiter(w),
            Call::Leave(w) => {
                let removed = self.dequeue(w);
                match self.live(name_of(w)) {
                    Some(held) if held.owner == Owner::Waiter(w) => {
                        self.free(name_of(w));
                        Answer::Leave("Released")
                    }
                    _ if removed => Answer::Leave("Left"),
                    _ => Answer::Leave("Absent"),
                }
            }
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

    #[test]
    fn the_queue_hands_on_in_order_and_forgets_the_dead() {
        let mut m = Model::new([8, 8, 8, 8]);
        assert_eq!(m.step(Call::Lock(0)), Answer::Bool(true));
        assert_eq!(m.step(Call::Step(0)), Answer::Step(Some(0)));
        assert_eq!(m.step(Call::Step(2)), Answer::Step(Some(1)));
        // Released: handed to waiter 0; a try-once does not barge.
        assert_eq!(m.step(Call::Clear(0)), Answer::Cleared(Some(true)));
        assert_eq!(m.step(Call::Lock(2)), Answer::Bool(false));
        assert_eq!(m.step(Call::Step(0)), Answer::Step(None));
        // Waiter 0 leaves holding it: handed to waiter 2.
        assert_eq!(m.step(Call::Leave(0)), Answer::Leave("Released"));
        assert_eq!(m.step(Call::Leave(0)), Answer::Leave("Absent"));
        // Waiter 2 never confirms: after its claim, a try-once takes the lock.
        assert_eq!(m.step(Call::Advance(3)), Answer::Nothing);
        assert_eq!(m.step(Call::Lock(2)), Answer::Bool(true));
        // A waiter that stops stepping is forgotten after its lease.
        assert_eq!(m.step(Call::Step(0)), Answer::Step(Some(0)));
        assert_eq!(m.step(Call::Advance(6)), Answer::Nothing);
        assert_eq!(m.step(Call::Clear(2)), Answer::Cleared(Some(true)));
        assert_eq!(m.step(Call::Status(0)), Answer::Locked(false));
    }

    #[test]
    fn a_lapsed_place_lasts_until_its_queue_expires() {
        let mut m = Model::new([8, 8, 8, 8]);
        assert_eq!(m.step(Call::Lock(0)), Answer::Bool(true));
        assert_eq!(m.step(Call::Step(0)), Answer::Step(Some(0)));
        // Lapsed at tick 6 but not evicted: leaving still finds it.
        assert_eq!(m.step(Call::Advance(6)), Answer::Nothing);
        assert_eq!(m.step(Call::Leave(0)), Answer::Leave("Left"));
        // Queued again at tick 6; at tick 18 its queue's keys expired, and the place with them.
        assert_eq!(m.step(Call::Step(0)), Answer::Step(Some(0)));
        assert_eq!(m.step(Call::Advance(12)), Answer::Nothing);
        assert_eq!(m.step(Call::Leave(0)), Answer::Leave("Absent"));
    }
}
