//! A fixed-capacity ring buffer over uninitialised storage.

use std::mem::MaybeUninit;

/// A queue holding at most `N` items without allocating.
pub struct Ring<T, const N: usize> {
    buf: [MaybeUninit<T>; N],
    head: usize,
    len: usize,
}

impl<T, const N: usize> Ring<T, N> {
    /// An empty ring.
    pub const fn new() -> Self {
        Ring { buf: [const { MaybeUninit::uninit() }; N], head: 0, len: 0 }
    }

    /// Number of items stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the ring holds no items.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `value`, or hands it back when the ring is full.
    pub fn push(&mut self, value: T) -> Result<(), T> {
        if self.len == N {
            return Err(value);
        }
        let slot = (self.head + self.len) % N;
        self.buf[slot].write(value);
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the oldest item.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        // SAFETY: slots head..head+len are initialised, and we shrink the range before
        // anyone can observe the slot again.
        let value = unsafe { self.buf[self.head].assume_init_read() };
        self.head = (self.head + 1) % N;
        self.len -= 1;
        Some(value)
    }

    /// Returns the oldest item without checking that there is one.
    ///
    /// # Safety
    ///
    /// The ring must not be empty.
    pub unsafe fn front_unchecked(&self) -> &T {
        debug_assert!(self.len > 0);
        unsafe {
            // SAFETY: the caller guarantees len > 0, so `head` is initialised.
            self.buf[self.head].assume_init_ref()
        }
    }

    /// Iterates from oldest to newest.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        (0..self.len).map(move |i| {
            let slot = (self.head + i) % N;
            // SAFETY: every slot in the live range is initialised.
            unsafe { self.buf[slot].assume_init_ref() }
        })
    }
}

impl<T, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Drop for Ring<T, N> {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    #[test]
    fn wraps_around() {
        let mut ring: Ring<u32, 2> = Ring::new();
        ring.push(1).unwrap();
        ring.push(2).unwrap();
        assert_eq!(ring.push(3), Err(3));
        assert_eq!(ring.pop(), Some(1));
        ring.push(3).unwrap();
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(ring.iter().filter(|v| **v > 2).count(), 1);
    }
}
