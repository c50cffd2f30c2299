//! A streaming ZIP writer (PKWARE APPNOTE 6.3): entries go out as their bytes
//! arrive, so memory does not grow with entry sizes — only a small record per
//! entry is kept for the central directory at the end.
//!
//! - Every entry has a data descriptor (general purpose bit 3): CRC-32 and
//!   sizes follow the data, so nothing is buffered or rewritten.
//! - ZIP64 where needed: an entry whose size could reach 4 GiB carries a
//!   ZIP64 extra field (and 8-byte sizes in its descriptor); an entry that
//!   starts beyond 4 GiB has its offset in a ZIP64 extra field; more than
//!   65,534 entries or a central directory past 4 GiB adds the ZIP64 end
//!   records. Small archives stay plain ZIP.
//! - Reproducible: every entry has the same timestamp (1980-01-01 00:00,
//!   the earliest DOS time), Unix mode 0644, UTF-8 names (bit 11), no
//!   comments, and deflate output depends only on the bytes — so the same
//!   entries in the same order give the same archive, byte for byte.
//! - Entry names must be safe to extract: relative, `/`-separated, no empty,
//!   `.` or `..` segment, no `\`, no control characters ([`is_safe_name`]).

use std::io::{self, Write};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Entry sizes and offsets at or above this do not fit the 32-bit fields.
const U32_LIMIT: u64 = 0xFFFF_FFFF;
/// Entry counts at or above this do not fit the 16-bit fields.
const U16_LIMIT: u64 = 0xFFFF;
/// Version needed to extract: 2.0 (deflate, data descriptors), 4.5 (ZIP64).
const VERSION_DEFLATE: u16 = 20;
const VERSION_ZIP64: u16 = 45;
/// Version made by: host 3 (Unix, so the external attributes are a mode),
/// specification 4.5.
const MADE_BY: u16 = (3 << 8) | VERSION_ZIP64;
/// Bit 3: sizes and CRC in the data descriptor; bit 11: the name is UTF-8.
const FLAGS: u16 = (1 << 3) | (1 << 11);
/// 1980-01-01 00:00:00 in MS-DOS date and time format.
const DOS_DATE: u16 = (1 << 5) | 1;
const DOS_TIME: u16 = 0;
/// Regular file, rw-r--r--, in the high 16 bits of the external attributes.
const EXTERNAL_ATTRIBUTES: u32 = 0o100_644 << 16;
/// The deflate level. Measured with the former encoder (miniz_oxide) on
/// generated text: level 1 ran at 250-375 MiB/s for output 1.3-1.5x the size
/// of level 6's, which ran at 20-44 MiB/s; zlib-rs's level 1 (zlib-ng's
/// "quick" strategy) is faster still. A bundle is written within one
/// Lambda invocation (API Gateway waits 30 s), so speed wins.
const DEFLATE_LEVEL: u32 = 1;
/// Deflate input is fed to the encoder in blocks of exactly this size (the
/// last one shorter), so its output depends only on the bytes, never on how
/// a caller splits its writes (the fast levels are sensitive to that).
const DEFLATE_BLOCK: usize = 64 * 1024;

const LOCAL_HEADER_LEN: u64 = 30;
const CENTRAL_HEADER_LEN: u64 = 46;
const ZIP64_LOCAL_EXTRA_LEN: u64 = 20;
/// Largest ZIP64 extra in a central header: sizes and offset.
const ZIP64_CENTRAL_EXTRA_MAX: u64 = 28;
const ZIP64_DESCRIPTOR_LEN: u64 = 24;
const END_LEN: u64 = 22;
const ZIP64_END_LEN: u64 = 56;
const ZIP64_LOCATOR_LEN: u64 = 20;

/// How an entry's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// As they are: for content that is already compressed.
    Stored,
    /// Raw DEFLATE.
    Deflated,
    /// Deflated, unless deflating the entry's first block (64 KiB, or the
    /// whole entry when shorter) saves less than 1/32 of it: then stored.
    /// The choice depends only on the bytes, so archives stay reproducible.
    Auto,
}

impl Method {
    /// The APPNOTE method code of a decided method (`Auto` is decided
    /// before its local header is written).
    fn code(self) -> u16 {
        match self {
            Method::Stored => 0,
            Method::Deflated | Method::Auto => 8,
        }
    }

    /// Largest entry data for `size` content bytes.
    fn bound(self, size: u64) -> u64 {
        match self {
            Method::Stored => size,
            Method::Deflated | Method::Auto => deflate_bound(size),
        }
    }
}

/// Whether `name` is safe as an entry name: it cannot resolve outside the
/// directory an archive is extracted into. The same rules as artifact paths
/// (SPEC §3): 1–65,535 bytes, `/`-separated, no leading `/`, no empty, `.`
/// or `..` segment, no `\`, no NUL or other control character.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= usize::from(u16::MAX)
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.chars().any(char::is_control)
        && name
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
}

/// An upper bound of the raw DEFLATE output for `len` input bytes: zlib-rs's
/// conservative bound (its fast level codes incompressible bytes with the
/// fixed Huffman code, up to 9 bits a byte, rather than falling back to
/// stored blocks) plus slack for the stream's end.
pub fn deflate_bound(len: u64) -> u64 {
    len.saturating_add(len.saturating_add(7) >> 3)
        .saturating_add(len.saturating_add(63) >> 6)
        .saturating_add(64)
}

/// An upper bound of the archive size for entries given as
/// `(name length, content length, method)`, for deciding up front where a
/// bundle can go.
pub fn max_archive_len(entries: impl IntoIterator<Item = (usize, u64, Method)>) -> u64 {
    let mut total = END_LEN + ZIP64_END_LEN + ZIP64_LOCATOR_LEN;
    for (name_len, size, method) in entries {
        let data = method.bound(size);
        let per_entry = LOCAL_HEADER_LEN
            + ZIP64_LOCAL_EXTRA_LEN
            + ZIP64_DESCRIPTOR_LEN
            + CENTRAL_HEADER_LEN
            + ZIP64_CENTRAL_EXTRA_MAX
            + 2 * name_len as u64;
        total = total.saturating_add(per_entry).saturating_add(data);
    }
    total
}

/// What the central directory needs to know about a finished entry.
#[derive(Debug)]
struct Finished {
    name: String,
    method: Method,
    zip64: bool,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    offset: u64,
}

/// The entry being written.
struct Current {
    name: String,
    method: Method,
    zip64: bool,
    offset: u64,
    declared: u64,
    crc: crc32fast::Hasher,
    uncompressed: u64,
    /// Bytes of entry data written so far (compressed when deflating).
    compressed: u64,
    deflate: Option<Box<Compress>>,
    /// Deflate input not yet given to the encoder (less than a block); for
    /// an undecided `Auto` entry, its first block as it arrives.
    pending: Vec<u8>,
}

/// A ZIP archive written to `W` as a stream; see the module documentation.
///
/// Write one entry at a time: [`ZipWriter::start_entry`], its bytes through
/// [`Write`], [`ZipWriter::finish_entry`]; then [`ZipWriter::finish`]. Any
/// error leaves the archive unusable: the caller must discard what was
/// written.
pub struct ZipWriter<W: Write> {
    out: W,
    offset: u64,
    entries: Vec<Finished>,
    current: Option<Current>,
    scratch: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for ZipWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipWriter")
            .field("offset", &self.offset)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl<W: Write> ZipWriter<W> {
    pub fn new(out: W) -> Self {
        ZipWriter {
            out,
            offset: 0,
            entries: Vec::new(),
            current: None,
            scratch: Vec::new(),
        }
    }

    /// The sink, e.g. to drain a `Vec<u8>` between writes. The writer keeps
    /// its own count of bytes written, so taking bytes out does no harm.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.offset
    }

    pub fn is_empty(&self) -> bool {
        self.offset == 0
    }

    /// Entries finished so far.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Begin an entry of exactly `size` content bytes (enforced by
    /// [`ZipWriter::finish_entry`]); writes its local header.
    pub fn start_entry(&mut self, name: &str, method: Method, size: u64) -> io::Result<()> {
        if self.current.is_some() {
            return Err(invalid("the previous entry is not finished"));
        }
        if !is_safe_name(name) {
            return Err(invalid("unsafe entry name"));
        }
        let zip64 = method.bound(size) >= U32_LIMIT;
        let offset = self.offset;
        // An `Auto` entry's header waits for its first block (see `decide`).
        if method != Method::Auto {
            self.emit(&local_header(name, method, zip64))?;
        }
        let deflate = (method != Method::Stored)
            .then(|| Box::new(Compress::new(Compression::new(DEFLATE_LEVEL), false)));
        if deflate.is_some() && self.scratch.is_empty() {
            self.scratch = vec![0; 64 * 1024];
        }
        let pending = if deflate.is_some() {
            Vec::with_capacity(DEFLATE_BLOCK)
        } else {
            Vec::new()
        };
        self.current = Some(Current {
            name: name.to_owned(),
            method,
            zip64,
            offset,
            declared: size,
            crc: crc32fast::Hasher::new(),
            uncompressed: 0,
            compressed: 0,
            deflate,
            pending,
        });
        Ok(())
    }

    /// Decide an `Auto` entry from its first block (in `pending`): deflate it
    /// on a trial encoder and store the entry if that saves under 1/32.
    /// Writes the local header; a stored entry's first block follows it.
    fn decide(&mut self) -> io::Result<()> {
        let Some(current) = self.current.as_mut() else {
            return Err(invalid("no entry is started"));
        };
        if current.method != Method::Auto {
            return Ok(());
        }
        let mut trial = Compress::new(Compression::new(DEFLATE_LEVEL), false);
        let produced = deflate_into(
            &mut trial,
            &current.pending,
            FlushCompress::Finish,
            &mut self.scratch,
            &mut io::sink(),
        )?;
        let block = current.pending.len() as u64;
        let worth_it = block > 0 && produced < block - block / 32;
        current.method = if worth_it {
            Method::Deflated
        } else {
            Method::Stored
        };
        let header = local_header(&current.name, current.method, current.zip64);
        self.out.write_all(&header)?;
        self.offset += header.len() as u64;
        if current.method == Method::Stored {
            current.deflate = None;
            let first = std::mem::take(&mut current.pending);
            current.compressed += first.len() as u64;
            self.out.write_all(&first)?;
            self.offset += first.len() as u64;
        }
        Ok(())
    }

    /// Add content bytes to the current entry.
    fn write_content(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(current) = self.current.as_mut() else {
            return Err(invalid("no entry is started"));
        };
        let total = current.uncompressed + data.len() as u64;
        if total > current.declared {
            return Err(invalid("more content than the entry's declared size"));
        }
        current.crc.update(data);
        current.uncompressed = total;
        let mut data = data;
        if current.method == Method::Auto {
            let room = DEFLATE_BLOCK - current.pending.len();
            let (now, later) = data.split_at(room.min(data.len()));
            current.pending.extend_from_slice(now);
            if current.pending.len() < DEFLATE_BLOCK {
                return Ok(());
            }
            self.decide()?;
            data = later;
        }
        let Some(current) = self.current.as_mut() else {
            return Err(invalid("no entry is started"));
        };
        match current.deflate.as_mut() {
            None => {
                current.compressed += data.len() as u64;
                self.out.write_all(data)?;
                self.offset += data.len() as u64;
            }
            Some(deflate) => {
                let mut input = data;
                // A deflated `Auto` entry's first block is still pending, whole.
                while !input.is_empty() || current.pending.len() == DEFLATE_BLOCK {
                    let room = DEFLATE_BLOCK - current.pending.len();
                    let (now, later) = input.split_at(room.min(input.len()));
                    current.pending.extend_from_slice(now);
                    input = later;
                    if current.pending.len() == DEFLATE_BLOCK {
                        let produced = deflate_into(
                            deflate,
                            &current.pending,
                            FlushCompress::None,
                            &mut self.scratch,
                            &mut self.out,
                        )?;
                        current.pending.clear();
                        current.compressed += produced;
                        self.offset += produced;
                    }
                }
            }
        }
        Ok(())
    }

    /// End the current entry: flush the compressor, check that exactly the
    /// declared size was written, write the data descriptor.
    pub fn finish_entry(&mut self) -> io::Result<()> {
        // An `Auto` entry shorter than a block is decided now.
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.method == Method::Auto && c.uncompressed == c.declared)
        {
            self.decide()?;
        }
        let Some(mut current) = self.current.take() else {
            return Err(invalid("no entry is started"));
        };
        if current.uncompressed != current.declared {
            return Err(invalid("less content than the entry's declared size"));
        }
        if let Some(deflate) = current.deflate.as_mut() {
            let produced = deflate_into(
                deflate,
                &current.pending,
                FlushCompress::Finish,
                &mut self.scratch,
                &mut self.out,
            )?;
            current.compressed += produced;
            self.offset += produced;
        }
        if !current.zip64 && current.compressed >= U32_LIMIT {
            return Err(io::Error::other("entry outgrew the 32-bit size fields"));
        }
        let crc = current.crc.clone().finalize();
        let mut descriptor = Vec::with_capacity(ZIP64_DESCRIPTOR_LEN as usize);
        descriptor.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        descriptor.extend_from_slice(&crc.to_le_bytes());
        if current.zip64 {
            descriptor.extend_from_slice(&current.compressed.to_le_bytes());
            descriptor.extend_from_slice(&current.uncompressed.to_le_bytes());
        } else {
            descriptor.extend_from_slice(&(current.compressed as u32).to_le_bytes());
            descriptor.extend_from_slice(&(current.uncompressed as u32).to_le_bytes());
        }
        self.emit(&descriptor)?;
        self.entries.push(Finished {
            name: current.name,
            method: current.method,
            zip64: current.zip64,
            crc,
            compressed: current.compressed,
            uncompressed: current.uncompressed,
            offset: current.offset,
        });
        Ok(())
    }

    /// Write the central directory and end records; returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        if self.current.is_some() {
            return Err(invalid("the last entry is not finished"));
        }
        let directory_start = self.offset;
        let entries = std::mem::take(&mut self.entries);
        let mut record = Vec::new();
        for e in &entries {
            record.clear();
            central_header(e, &mut record);
            self.emit(&record)?;
        }
        let directory_len = self.offset - directory_start;
        let count = entries.len() as u64;
        let zip64 =
            count >= U16_LIMIT || directory_len >= U32_LIMIT || directory_start >= U32_LIMIT;
        let mut end = Vec::with_capacity((ZIP64_END_LEN + ZIP64_LOCATOR_LEN + END_LEN) as usize);
        if zip64 {
            let zip64_end_at = self.offset;
            end.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
            // Size of the rest of this record.
            end.extend_from_slice(&(ZIP64_END_LEN - 12).to_le_bytes());
            end.extend_from_slice(&MADE_BY.to_le_bytes());
            end.extend_from_slice(&VERSION_ZIP64.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes()); // this disk
            end.extend_from_slice(&0u32.to_le_bytes()); // disk with the directory
            end.extend_from_slice(&count.to_le_bytes()); // entries on this disk
            end.extend_from_slice(&count.to_le_bytes()); // entries in all
            end.extend_from_slice(&directory_len.to_le_bytes());
            end.extend_from_slice(&directory_start.to_le_bytes());
            // Locator.
            end.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&zip64_end_at.to_le_bytes());
            end.extend_from_slice(&1u32.to_le_bytes()); // disks in all
        }
        let count16 = u16::try_from(count)
            .ok()
            .filter(|&c| u64::from(c) < U16_LIMIT)
            .unwrap_or(u16::MAX);
        end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes()); // this disk
        end.extend_from_slice(&0u16.to_le_bytes()); // disk with the directory
        end.extend_from_slice(&count16.to_le_bytes());
        end.extend_from_slice(&count16.to_le_bytes());
        end.extend_from_slice(&u32_or_marker(directory_len).to_le_bytes());
        end.extend_from_slice(&u32_or_marker(directory_start).to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes()); // comment length
        self.emit(&end)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ZipWriter<W> {
    /// Content of the current entry.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_content(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Feed `input` to the encoder whole (and with `Finish`, end the stream),
/// writing what it produces to `out`; returns the number of bytes written.
fn deflate_into<W: Write>(
    deflate: &mut Compress,
    mut input: &[u8],
    flush: FlushCompress,
    scratch: &mut [u8],
    out: &mut W,
) -> io::Result<u64> {
    let finish = matches!(flush, FlushCompress::Finish);
    let mut written = 0u64;
    loop {
        let (before_in, before_out) = (deflate.total_in(), deflate.total_out());
        let status = deflate
            .compress(input, scratch, flush)
            .map_err(io::Error::other)?;
        let consumed = (deflate.total_in() - before_in) as usize;
        let produced = (deflate.total_out() - before_out) as usize;
        input = &input[consumed..];
        out.write_all(&scratch[..produced])?;
        written += produced as u64;
        let done = if finish {
            status == Status::StreamEnd
        } else {
            input.is_empty()
        };
        if done {
            return Ok(written);
        }
        if consumed == 0 && produced == 0 {
            return Err(io::Error::other("deflate made no progress"));
        }
    }
}

/// The local file header of an entry (CRC and sizes follow in its data descriptor).
fn local_header(name: &str, method: Method, zip64: bool) -> Vec<u8> {
    let mut header = Vec::with_capacity(LOCAL_HEADER_LEN as usize + name.len() + 20);
    header.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    let needed = if zip64 {
        VERSION_ZIP64
    } else {
        VERSION_DEFLATE
    };
    header.extend_from_slice(&needed.to_le_bytes());
    header.extend_from_slice(&FLAGS.to_le_bytes());
    header.extend_from_slice(&method.code().to_le_bytes());
    header.extend_from_slice(&DOS_TIME.to_le_bytes());
    header.extend_from_slice(&DOS_DATE.to_le_bytes());
    // CRC and sizes follow in the data descriptor (bit 3).
    header.extend_from_slice(&0u32.to_le_bytes());
    let sizes = if zip64 { u32::MAX } else { 0 };
    header.extend_from_slice(&sizes.to_le_bytes());
    header.extend_from_slice(&sizes.to_le_bytes());
    header.extend_from_slice(&(name.len() as u16).to_le_bytes());
    let extra_len: u16 = if zip64 { 20 } else { 0 };
    header.extend_from_slice(&extra_len.to_le_bytes());
    header.extend_from_slice(name.as_bytes());
    if zip64 {
        // ZIP64 extended information: both sizes, zero here (bit 3).
        header.extend_from_slice(&1u16.to_le_bytes());
        header.extend_from_slice(&16u16.to_le_bytes());
        header.extend_from_slice(&0u64.to_le_bytes());
        header.extend_from_slice(&0u64.to_le_bytes());
    }
    header
}

fn u32_or_marker(value: u64) -> u32 {
    u32::try_from(value)
        .ok()
        .filter(|&v| u64::from(v) < U32_LIMIT)
        .unwrap_or(u32::MAX)
}

fn central_header(e: &Finished, out: &mut Vec<u8>) {
    // ZIP64 extra: the sizes of a ZIP64 entry (as its local header said), the
    // offset when it does not fit; in that order (APPNOTE 4.5.3).
    let offset_zip64 = e.offset >= U32_LIMIT;
    let mut extra = Vec::new();
    if e.zip64 {
        extra.extend_from_slice(&e.uncompressed.to_le_bytes());
        extra.extend_from_slice(&e.compressed.to_le_bytes());
    }
    if offset_zip64 {
        extra.extend_from_slice(&e.offset.to_le_bytes());
    }
    let needed = if e.zip64 || offset_zip64 {
        VERSION_ZIP64
    } else {
        VERSION_DEFLATE
    };
    let (compressed, uncompressed) = if e.zip64 {
        (u32::MAX, u32::MAX)
    } else {
        (e.compressed as u32, e.uncompressed as u32)
    };
    let offset = if offset_zip64 {
        u32::MAX
    } else {
        e.offset as u32
    };
    let extra_len = if extra.is_empty() { 0 } else { extra.len() + 4 };
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    out.extend_from_slice(&MADE_BY.to_le_bytes());
    out.extend_from_slice(&needed.to_le_bytes());
    out.extend_from_slice(&FLAGS.to_le_bytes());
    out.extend_from_slice(&e.method.code().to_le_bytes());
    out.extend_from_slice(&DOS_TIME.to_le_bytes());
    out.extend_from_slice(&DOS_DATE.to_le_bytes());
    out.extend_from_slice(&e.crc.to_le_bytes());
    out.extend_from_slice(&compressed.to_le_bytes());
    out.extend_from_slice(&uncompressed.to_le_bytes());
    out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
    out.extend_from_slice(&(extra_len as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    out.extend_from_slice(&0u16.to_le_bytes()); // disk number start
    out.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    out.extend_from_slice(&EXTERNAL_ATTRIBUTES.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(e.name.as_bytes());
    if !extra.is_empty() {
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        out.extend_from_slice(&extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Read};

    fn build(entries: &[(&str, Method, &[u8])]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Vec::new());
        for (name, method, data) in entries {
            zip.start_entry(name, *method, data.len() as u64).unwrap();
            zip.write_all(data).unwrap();
            zip.finish_entry().unwrap();
        }
        zip.finish().unwrap()
    }

    fn read_all(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut reader = ::zip::ZipArchive::new(Cursor::new(archive)).unwrap();
        (0..reader.len())
            .map(|i| {
                let mut file = reader.by_index(i).unwrap();
                let mut data = Vec::new();
                file.read_to_end(&mut data).unwrap();
                (file.name().to_owned(), data)
            })
            .collect()
    }

    /// Deterministic bytes that deflate does not shrink.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn entries_read_back_exactly_and_archives_are_reproducible() {
        let text = "terraform { required_version = \">= 1.5\" }\n".repeat(500);
        let random = noise(200_000, 7);
        let entries: [(&str, Method, &[u8]); 4] = [
            ("MANIFEST.json", Method::Deflated, b"{}"),
            (
                "docs/a b/\u{e9}t\u{e9}.md",
                Method::Deflated,
                text.as_bytes(),
            ),
            ("empty.txt", Method::Deflated, b""),
            ("img/x.png", Method::Stored, &random),
        ];
        let archive = build(&entries);
        let read = read_all(&archive);
        assert_eq!(read.len(), entries.len());
        for ((name, _, data), (got_name, got)) in entries.iter().zip(&read) {
            assert_eq!(name, got_name);
            assert_eq!(data, got, "{name}");
        }
        assert!(
            archive.len() < random.len() + 2_000,
            "text is deflated: {}",
            archive.len()
        );
        assert_eq!(archive, build(&entries), "same entries, same bytes");
        // Small archives stay plain ZIP: no ZIP64 end records.
        assert!(
            !archive
                .windows(4)
                .any(|w| w == 0x0606_4b50u32.to_le_bytes())
        );
        assert_eq!(&archive[..4], b"PK\x03\x04");
    }

    #[test]
    fn auto_stores_what_does_not_compress_and_deflates_what_does() {
        let text = "resource \"aws_s3_bucket\" \"artifacts\" {}\n".repeat(5_000);
        let random = noise(3 * DEFLATE_BLOCK + 5, 9);
        // Compressible after a first block of noise: still stored (first block decides).
        let mut mixed = noise(DEFLATE_BLOCK, 10);
        mixed.extend_from_slice(text.as_bytes());
        let short_text = &text.as_bytes()[..1_000];
        let cases: [(&str, &[u8], ::zip::CompressionMethod); 5] = [
            (
                "text.tf",
                text.as_bytes(),
                ::zip::CompressionMethod::Deflated,
            ),
            ("short.tf", short_text, ::zip::CompressionMethod::Deflated),
            ("noise.bin", &random, ::zip::CompressionMethod::Stored),
            ("mixed.bin", &mixed, ::zip::CompressionMethod::Stored),
            ("empty.txt", b"", ::zip::CompressionMethod::Stored),
        ];
        let entries: Vec<(&str, Method, &[u8])> = cases
            .iter()
            .map(|(n, d, _)| (*n, Method::Auto, *d))
            .collect();
        let archive = build(&entries);
        let mut reader = ::zip::ZipArchive::new(Cursor::new(&archive)).unwrap();
        for (name, data, method) in cases {
            let mut file = reader.by_name(name).unwrap();
            assert_eq!(file.compression(), method, "{name}");
            let mut got = Vec::new();
            file.read_to_end(&mut got).unwrap();
            assert!(got == data, "{name}: bytes differ");
        }
        assert!((archive.len() as u64) < (text.len() / 4 + random.len() + mixed.len()) as u64);
        // Write sizes do not change the choice or the bytes.
        let mut zip = ZipWriter::new(Vec::new());
        for (name, _, data) in &entries {
            zip.start_entry(name, Method::Auto, data.len() as u64)
                .unwrap();
            for piece in data.chunks(777) {
                zip.write_all(piece).unwrap();
            }
            zip.finish_entry().unwrap();
        }
        assert!(zip.finish().unwrap() == archive);
        // The bound holds for Auto too.
        let bound = max_archive_len(
            entries
                .iter()
                .map(|(n, m, d)| (n.len(), d.len() as u64, *m)),
        );
        assert!(archive.len() as u64 <= bound);
    }

    #[test]
    fn headers_are_fixed_and_descriptors_carry_the_sizes() {
        let archive = build(&[("a.txt", Method::Stored, b"hello")]);
        let u16_at = |i: usize| u16::from_le_bytes([archive[i], archive[i + 1]]);
        assert_eq!(u16_at(6), FLAGS);
        assert_eq!(u16_at(8), 0, "stored");
        assert_eq!((u16_at(10), u16_at(12)), (DOS_TIME, DOS_DATE));
        assert_eq!(&archive[14..26], &[0; 12], "CRC and sizes deferred");
        // Local header (30 + 5), data (5), then the descriptor.
        let d = &archive[40..56];
        assert_eq!(&d[..4], &0x0807_4b50u32.to_le_bytes());
        assert_eq!(&d[4..8], &crc32fast::hash(b"hello").to_le_bytes());
        assert_eq!(&d[8..16], &[5, 0, 0, 0, 5, 0, 0, 0]);
        let mut reader = ::zip::ZipArchive::new(Cursor::new(&archive)).unwrap();
        let file = reader.by_index(0).unwrap();
        assert_eq!(file.unix_mode(), Some(0o100_644));
        assert_eq!(file.compression(), ::zip::CompressionMethod::Stored);
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            ".",
            "..",
            "a\\..\\b",
            "nul\0byte",
            "new\nline",
        ] {
            assert!(!is_safe_name(bad), "{bad:?}");
            let mut zip = ZipWriter::new(Vec::new());
            assert!(zip.start_entry(bad, Method::Stored, 0).is_err(), "{bad:?}");
        }
        for good in ["a", "a/b.txt", "..a/b..", "C:x", "d\u{e9}j\u{e0}/vu.md"] {
            assert!(is_safe_name(good), "{good:?}");
        }
    }

    #[test]
    fn sizes_other_than_declared_are_refused() {
        let mut zip = ZipWriter::new(Vec::new());
        zip.start_entry("a", Method::Stored, 3).unwrap();
        assert!(zip.write_all(b"abcd").is_err());
        let mut zip = ZipWriter::new(Vec::new());
        zip.start_entry("a", Method::Deflated, 3).unwrap();
        zip.write_all(b"ab").unwrap();
        assert!(zip.finish_entry().is_err());
        let mut zip = ZipWriter::new(Vec::new());
        assert!(zip.write_all(b"x").is_err(), "no entry started");
        zip.start_entry("a", Method::Stored, 0).unwrap();
        assert!(zip.start_entry("b", Method::Stored, 0).is_err());
        assert!(ZipWriter::new(Vec::new()).finish_entry().is_err());
    }

    #[test]
    fn the_size_bound_holds_for_incompressible_and_empty_content() {
        for (len, seed) in [(0, 1), (1, 2), (1_000, 3), (70_000, 4), (1 << 20, 5)] {
            let data = noise(len, seed);
            for method in [Method::Stored, Method::Deflated, Method::Auto] {
                let name = "dir/entry.bin";
                let archive = build(&[(name, method, &data)]);
                let bound = max_archive_len([(name.len(), len as u64, method)]);
                assert!(archive.len() as u64 <= bound, "{len} {method:?}");
            }
        }
    }

    #[test]
    fn neither_write_sizes_nor_draining_the_sink_change_the_bytes() {
        let data = noise(300_000, 9);
        let text = "output \"bucket\" { value = aws_s3_bucket.b.arn }\n".repeat(6_000);
        let entries: [(&str, Method, &[u8]); 3] = [
            ("a", Method::Deflated, &data),
            ("b", Method::Stored, &data),
            ("c", Method::Deflated, text.as_bytes()),
        ];
        let whole = build(&entries);
        for chunk_size in [1, 1_000, 65_536, 100_003] {
            let mut zip = ZipWriter::new(Vec::new());
            let mut drained = Vec::new();
            for (name, method, body) in entries {
                zip.start_entry(name, method, body.len() as u64).unwrap();
                // Byte-at-a-time only for a prefix, to keep the test fast.
                let body = if chunk_size == 1 {
                    &body[..5_000]
                } else {
                    body
                };
                for chunk in body.chunks(chunk_size) {
                    zip.write_all(chunk).unwrap();
                    drained.append(zip.get_mut());
                }
                if chunk_size == 1 {
                    zip.write_all(&entries.iter().find(|e| e.0 == name).unwrap().2[5_000..])
                        .unwrap();
                }
                zip.finish_entry().unwrap();
            }
            drained.extend(zip.finish().unwrap());
            assert!(drained == whole, "writes of {chunk_size} bytes");
        }
    }

    #[test]
    fn more_than_65535_entries_make_a_valid_zip64_archive() {
        const COUNT: usize = 70_000;
        let mut zip = ZipWriter::new(Vec::new());
        for i in 0..COUNT {
            let name = format!("d{}/f{i}.txt", i % 100);
            let body = format!("entry {i}\n");
            let method = if i.is_multiple_of(2) {
                Method::Stored
            } else {
                Method::Deflated
            };
            zip.start_entry(&name, method, body.len() as u64).unwrap();
            zip.write_all(body.as_bytes()).unwrap();
            zip.finish_entry().unwrap();
        }
        let archive = zip.finish().unwrap();
        // The ZIP64 end record and locator precede the classic end record,
        // whose entry count is the 0xFFFF marker.
        let end = archive.len() - END_LEN as usize;
        assert_eq!(&archive[end..end + 4], &0x0605_4b50u32.to_le_bytes());
        assert_eq!(&archive[end + 8..end + 12], &[0xFF; 4]);
        let locator = end - ZIP64_LOCATOR_LEN as usize;
        assert_eq!(
            &archive[locator..locator + 4],
            &0x0706_4b50u32.to_le_bytes()
        );

        let mut reader = ::zip::ZipArchive::new(Cursor::new(&archive)).unwrap();
        assert_eq!(reader.len(), COUNT);
        for i in [0, 1, 65_534, 65_535, 65_536, COUNT - 1] {
            let mut file = reader.by_index(i).unwrap();
            assert_eq!(file.name(), format!("d{}/f{i}.txt", i % 100));
            let mut text = String::new();
            file.read_to_string(&mut text).unwrap();
            assert_eq!(text, format!("entry {i}\n"));
        }
    }

    /// Over 4 GiB: an entry of 4 GiB + 1 MiB (so its sizes need ZIP64), and
    /// entries after it whose offsets need ZIP64, written to a temporary file
    /// and read back whole (every CRC checked) by the `zip` crate. Writes and
    /// reads about 4.3 GB: run with `cargo test -p artifacts-shared --
    /// --ignored zip64` or through `bench/bundle.sh`.
    #[test]
    #[ignore = "writes and reads 4.3 GB; run by bench/bundle.sh"]
    fn over_4_gib_makes_a_valid_zip64_archive() {
        const BIG: u64 = (4 << 30) + (1 << 20);
        let path = std::env::temp_dir().join(format!("zip64-{}.zip", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let mut zip = ZipWriter::new(io::BufWriter::with_capacity(1 << 20, file));
        let zeros = vec![0u8; 1 << 20];
        zip.start_entry("big/zeros.bin", Method::Stored, BIG)
            .unwrap();
        for _ in 0..BIG / zeros.len() as u64 {
            zip.write_all(&zeros).unwrap();
        }
        zip.finish_entry().unwrap();
        for (name, method) in [
            ("after/a.txt", Method::Deflated),
            ("after/b.bin", Method::Stored),
        ] {
            zip.start_entry(name, method, 5).unwrap();
            zip.write_all(b"after").unwrap();
            zip.finish_entry().unwrap();
        }
        zip.finish()
            .unwrap()
            .into_inner()
            .unwrap()
            .sync_all()
            .unwrap();

        let result = std::panic::catch_unwind(|| {
            let file = std::fs::File::open(&path).unwrap();
            let mut reader = ::zip::ZipArchive::new(io::BufReader::new(file)).unwrap();
            assert_eq!(reader.len(), 3);
            let mut big = reader.by_index(0).unwrap();
            assert_eq!(big.size(), BIG);
            // Reading to the end checks the CRC-32 of all 4 GiB.
            let copied = io::copy(&mut big, &mut io::sink()).unwrap();
            assert_eq!(copied, BIG);
            drop(big);
            for (i, name) in [(1, "after/a.txt"), (2, "after/b.bin")] {
                let mut file = reader.by_index(i).unwrap();
                assert_eq!(file.name(), name);
                let mut text = String::new();
                file.read_to_string(&mut text).unwrap();
                assert_eq!(text, "after");
            }
        });
        let _ = std::fs::remove_file(&path);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}
