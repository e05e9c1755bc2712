//! The register window: map0 of the device mapped `MAP_SHARED` (a private map of a
//! device would write into a copy), accessed only through volatile 32-bit loads and
//! stores on raw pointers. No reference into the mapping is ever made: a reference
//! would let the compiler add, merge or drop accesses, and EVT_POP pops on every read.

use std::fs::File;
use std::ptr::NonNull;

use mmap_rs::{Mmap, MmapFlags, MmapMut, MmapOptions};

use crate::{check_offset, BusError};

/// Keeps the mapping alive; never dereferenced as a slice.
enum Mapping {
    ReadWrite(#[allow(dead_code)] MmapMut),
    ReadOnly(#[allow(dead_code)] Mmap),
}

/// map0, from the register base (the sysfs offset into the first page) to its end.
pub(crate) struct Window {
    _mapping: Mapping,
    base: NonNull<u8>,
    len: usize,
    writable: bool,
}

// SAFETY: the window owns its mapping for as long as it lives, and every access is
// a single volatile 32-bit load or store through `base`: there is no Rust-visible
// shared state to race on, and the peripheral serializes concurrent bus transactions
// itself (as it does for two CPU cores).
unsafe impl Send for Window {}
// SAFETY: see `Send`; `&Window` only allows those volatile accesses.
unsafe impl Sync for Window {}

impl Window {
    /// Maps `map_len` bytes of `file` at file offset 0 (map0), shared, and places the
    /// register base `offset` bytes in.
    pub(crate) fn map(
        file: &File,
        map_len: usize,
        offset: usize,
        writable: bool,
    ) -> Result<Self, mmap_rs::Error> {
        Self::map_at(file, 0, map_len, offset, writable)
    }

    /// As [`Window::map`], at `file_offset` into the file (a page multiple): map N of
    /// a UIO device, or a physical address of /dev/mem.
    pub(crate) fn map_at(
        file: &File,
        file_offset: u64,
        map_len: usize,
        offset: usize,
        writable: bool,
    ) -> Result<Self, mmap_rs::Error> {
        debug_assert!(offset < map_len && offset.is_multiple_of(4));
        // SAFETY: mmap-rs marks file mappings unsafe because other mappings of the file
        // may change it behind our back. That is exactly what device registers do, and
        // why this module reads and writes only through volatile raw-pointer accesses
        // and never hands out a reference or slice into the mapping.
        let options = unsafe { MmapOptions::new(map_len)?.with_file(file, file_offset) }
            .with_flags(MmapFlags::SHARED);
        let (mapping, ptr) = if writable {
            let mut m = options.map_mut()?;
            let p = m.as_mut_ptr();
            (Mapping::ReadWrite(m), p)
        } else {
            let m = options.map()?;
            let p = m.as_ptr().cast_mut();
            (Mapping::ReadOnly(m), p)
        };
        // SAFETY: `offset < map_len`, so the result stays inside the mapping.
        let base = unsafe { ptr.add(offset) };
        Ok(Self {
            _mapping: mapping,
            base: NonNull::new(base).ok_or_else(|| {
                mmap_rs::Error::Io(std::io::Error::other("mmap returned a null pointer"))
            })?,
            len: map_len - offset,
            writable,
        })
    }

    /// Bytes from the register base to the end of the mapping.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    pub(crate) fn read32(&self, offset: u32) -> Result<u32, BusError> {
        check_offset(offset, self.len)?;
        // SAFETY: `check_offset` keeps `offset + 4` inside the window and `offset`
        // word aligned; the base is page aligned plus a multiple of 4, so the pointer
        // is valid and aligned for a u32 for as long as `self` holds the mapping.
        // One volatile load is one bus read, never repeated or elided.
        Ok(unsafe {
            self.base
                .as_ptr()
                .add(offset as usize)
                .cast::<u32>()
                .read_volatile()
        })
    }

    pub(crate) fn write32(&self, offset: u32, value: u32) -> Result<(), BusError> {
        check_offset(offset, self.len)?;
        if !self.writable {
            return Err(BusError::ReadOnly {
                op: "a register write",
            });
        }
        // SAFETY: as in `read32`; the mapping is writable (PROT_WRITE, MAP_SHARED), so
        // the store reaches the device (or the file that stands in for it).
        unsafe {
            self.base
                .as_ptr()
                .add(offset as usize)
                .cast::<u32>()
                .write_volatile(value)
        };
        Ok(())
    }
}
