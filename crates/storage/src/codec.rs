//! How a blob's bytes are encoded at rest: raw, LZ4 frames, or zstd (optionally against the previous version of
//! the document as a dictionary).
//!
//! Stored bytes are untrusted input: a blob can be truncated, flipped by a disk or written by someone else. Every
//! decoder is therefore told the size the database recorded and never produces or reserves more than that (plus a
//! bounded per-frame working buffer), whatever a frame header claims; anything that is not a well-formed frame of
//! exactly that size is a [`CodecError`], never a panic and never different bytes.
//!
//! The LZ4 output is the official LZ4 frame format with the content size and a content checksum, so the `lz4`
//! command-line tool can read (and verify) a blob copied straight out of a bucket.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use lz4_flex::frame::{FrameDecoder, FrameEncoder, FrameInfo};
use zstd::zstd_safe;

/// How a blob's bytes are encoded at rest. Names are stored in the database: "raw", "lz4", "zstd".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Raw,
    Lz4,
    Zstd,
}

impl Codec {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Raw => "raw",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

impl FromStr for Codec {
    type Err = CodecError;

    /// Exact names only: a database value that is spelled differently is a bug to surface, not to guess at.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "raw" => Ok(Codec::Raw),
            "lz4" => Ok(Codec::Lz4),
            "zstd" => Ok(Codec::Zstd),
            other => Err(CodecError::UnknownCodec(other.to_owned())),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why bytes could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The bytes do not start with the LZ4 frame magic `04 22 4D 18`.
    #[error("not an LZ4 frame")]
    NotLz4Frame,
    /// The bytes start with the legacy magic `02 21 4C 18` (`lz4 -l`), which has no checksum and no size.
    #[error("an LZ4 legacy frame, not the LZ4 frame format")]
    LegacyLz4Frame,
    /// The frame declares, or decodes to, another size than the database recorded. When the frame declares its
    /// size, `actual` is that declared size (checked before decoding); when it does not, decoding stops one byte
    /// past `expected`, so an `actual` of `expected + 1` means "longer than expected".
    #[error("decoded size {actual} differs from the recorded {expected}")]
    SizeMismatch { expected: u64, actual: u64 },
    /// Truncated data, a flipped byte, a bad header or a checksum mismatch.
    #[error("corrupt {codec} data: {message}")]
    Corrupt { codec: &'static str, message: String },
    #[error("unknown codec {0:?}")]
    UnknownCodec(String),
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// The zstd level [`encode`] uses: zstd's own default, a good speed/ratio balance for documents.
const ZSTD_LEVEL: i32 = zstd::DEFAULT_COMPRESSION_LEVEL;

/// How much of a blob [`lz4_worth_it`] and [`is_text`] look at: enough to judge, cheap enough to run on every upload.
const PROBE_LEN: usize = 64 * 1024;

const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4D, 0x18];
const LZ4_LEGACY_MAGIC: [u8; 4] = [0x02, 0x21, 0x4C, 0x18];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

// Frame descriptor bits, from the LZ4 frame format specification.
const FLG_VERSION_MASK: u8 = 0b1100_0000;
const FLG_VERSION_01: u8 = 0b0100_0000;
const FLG_BLOCK_CHECKSUMS: u8 = 0b0001_0000;
const FLG_CONTENT_SIZE: u8 = 0b0000_1000;
const FLG_CONTENT_CHECKSUM: u8 = 0b0000_0100;
const FLG_RESERVED: u8 = 0b0000_0010;
const FLG_DICTIONARY_ID: u8 = 0b0000_0001;
const BD_RESERVED: u8 = 0b1000_1111;
const BLOCK_UNCOMPRESSED_BIT: u32 = 0x8000_0000;

/// LZ4 frame format with the content size and a content checksum in the frame (so `lz4 -d` verifies it too).
pub fn lz4_compress(data: &[u8]) -> Vec<u8> {
    // Independent blocks (the default) keep the decoder's working buffer at one block; the block size is chosen
    // from the input length (64 KiB for documents up to 64 KiB), which bounds what decoding has to reserve.
    let info = FrameInfo::new()
        .content_size(Some(data.len() as u64))
        .content_checksum(true);
    let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
    // Writing into a Vec cannot fail and the declared content size is the input's own length, so neither call
    // can return an error; a failure here would be a bug in lz4_flex, not bad input.
    encoder
        .write_all(data)
        .expect("LZ4 frame encoding into a Vec cannot fail");
    encoder
        .finish()
        .expect("LZ4 frame with its own length as content size cannot fail")
}

/// Decodes an LZ4 frame into exactly `expected_len` bytes (the size the database recorded). Never allocates or
/// produces more than `expected_len` (+ a small constant) bytes whatever the header claims; anything else than a
/// well-formed frame of exactly that length is an error, never a panic.
pub fn lz4_decompress(frame: &[u8], expected_len: u64) -> Result<Vec<u8>, CodecError> {
    let shape = inspect_lz4_frame(frame)?;
    if let Some(declared) = shape.declared_size
        && declared != expected_len
    {
        return Err(CodecError::SizeMismatch {
            expected: expected_len,
            actual: declared,
        });
    }

    // One byte past the expected length is enough to tell "too long" without decoding the rest.
    let limit = expected_len.saturating_add(1);
    // The block walk bounds what the frame can produce, so a huge expected_len from a bad row cannot make us
    // reserve memory for bytes the frame cannot contain.
    let capacity = usize::try_from(limit.min(shape.max_output)).map_err(|_| lz4_corrupt("frame too large"))?;
    let mut out = Vec::new();
    out.try_reserve_exact(capacity)
        .map_err(|_| lz4_corrupt(format!("cannot reserve {capacity} bytes")))?;
    // lz4_flex reserves its own block buffers from the header's block maximum (at most 4 MiB, three times that for
    // linked blocks); the output itself is bounded here by `take`.
    let mut decoder = FrameDecoder::new(frame).take(limit);
    decoder
        .read_to_end(&mut out)
        .map_err(|error| lz4_corrupt(error.to_string()))?;
    check_len(expected_len, &out)?;
    Ok(out)
}

/// zstd at `level`; with `reference` (the previous version of a document) as a raw-content dictionary, so a small
/// edit of a text document encodes to a few hundred bytes.
pub fn zstd_compress(data: &[u8], level: i32, reference: Option<&[u8]>) -> Result<Vec<u8>, CodecError> {
    let encode_error = |error: std::io::Error| CodecError::Encode(format!("zstd: {error}"));
    // A reference that starts with zstd's dictionary magic would be parsed as a trained dictionary rather than raw
    // content; documents do not, and the decoder loads it the same way, so both sides agree either way.
    let mut compressor =
        zstd::bulk::Compressor::with_dictionary(level, reference.unwrap_or_default()).map_err(encode_error)?;
    // Without a checksum a flipped byte inside a literal run would decode to different bytes without an error.
    compressor
        .set_parameter(zstd_safe::CParameter::ChecksumFlag(true))
        .map_err(encode_error)?;
    compressor
        .set_parameter(zstd_safe::CParameter::ContentSizeFlag(true))
        .map_err(encode_error)?;
    compressor.compress(data).map_err(encode_error)
}

/// Bounded like lz4_decompress (use a decompressor with capacity `expected_len`; refuse frames whose header declares
/// another content size before allocating).
pub fn zstd_decompress(data: &[u8], expected_len: u64, reference: Option<&[u8]>) -> Result<Vec<u8>, CodecError> {
    if !data.starts_with(&ZSTD_MAGIC) {
        return Err(zstd_corrupt("not a zstd frame"));
    }
    match zstd_safe::get_frame_content_size(data) {
        Err(_) => return Err(zstd_corrupt("unreadable frame header")),
        Ok(Some(declared)) if declared != expected_len => {
            return Err(CodecError::SizeMismatch {
                expected: expected_len,
                actual: declared,
            });
        }
        Ok(_) => {}
    }
    // zstd would happily decode concatenated frames; a blob is exactly one frame, and this also reports truncation
    // before any output buffer exists.
    match zstd_safe::find_frame_compressed_size(data) {
        Err(code) => return Err(zstd_corrupt(zstd_safe::get_error_name(code))),
        Ok(len) if len != data.len() => {
            return Err(zstd_corrupt(format!(
                "{} bytes after the end of the frame",
                data.len() - len
            )));
        }
        Ok(_) => {}
    }
    let capacity = usize::try_from(expected_len)
        .map_err(|_| zstd_corrupt(format!("{expected_len} bytes do not fit in memory")))?;
    let mut decompressor = zstd::bulk::Decompressor::with_dictionary(reference.unwrap_or_default())
        .map_err(|error| zstd_corrupt(format!("cannot load the reference: {error}")))?;
    // Single-shot decoding writes straight into this buffer of at most `capacity` bytes; zstd allocates no window.
    let out = decompressor
        .decompress(data, capacity)
        .map_err(|error| zstd_corrupt(error.to_string()))?;
    check_len(expected_len, &out)?;
    Ok(out)
}

/// encode/decode by codec (Raw is the identity; decode of Raw still checks the length).
pub fn encode(codec: Codec, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    match codec {
        Codec::Raw => Ok(data.to_vec()),
        Codec::Lz4 => Ok(lz4_compress(data)),
        Codec::Zstd => zstd_compress(data, ZSTD_LEVEL, None),
    }
}

/// Decodes what [`encode`] produced back into exactly `expected_len` bytes.
pub fn decode(codec: Codec, stored: &[u8], expected_len: u64) -> Result<Vec<u8>, CodecError> {
    match codec {
        Codec::Raw => {
            check_len(expected_len, stored)?;
            Ok(stored.to_vec())
        }
        Codec::Lz4 => lz4_decompress(stored, expected_len),
        Codec::Zstd => zstd_decompress(stored, expected_len, None),
    }
}

/// A cheap probe: compresses at most the first 64 KiB with LZ4 and says whether that saves at least `min_saving`
/// (a fraction, e.g. 0.10). PDFs and images say no, JSON and text say yes.
pub fn lz4_worth_it(data: &[u8], min_saving: f64) -> bool {
    let sample = &data[..data.len().min(PROBE_LEN)];
    if sample.is_empty() {
        return false;
    }
    // The frame's own overhead (about 30 bytes) counts: it is what a small blob would really cost.
    let compressed = lz4_compress(sample).len() as f64;
    1.0 - compressed / sample.len() as f64 >= min_saving
}

/// Whether content is text (JSON, Typst, LaTeX, plain text), decided by content whatever the file type: valid UTF-8,
/// no NUL, and almost no control characters other than \t \n \r (look at the whole input, or the first 64 KiB and
/// accept a UTF-8 sequence cut at that boundary).
pub fn is_text(data: &[u8]) -> bool {
    let sample = &data[..data.len().min(PROBE_LEN)];
    let text = match std::str::from_utf8(sample) {
        Ok(text) => text,
        // Only a sequence cut by our own 64 KiB boundary is forgiven; one cut at the real end is invalid UTF-8.
        Err(error) if error.error_len().is_none() && data.len() > sample.len() => {
            match std::str::from_utf8(&sample[..error.valid_up_to()]) {
                Ok(text) => text,
                Err(_) => return false,
            }
        }
        Err(_) => return false,
    };
    let mut chars = 0usize;
    let mut controls = 0usize;
    for c in text.chars() {
        if c == '\0' {
            return false;
        }
        chars += 1;
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
            controls += 1;
        }
    }
    // A stray form feed or escape in a long text is still text; binary that happens to be valid UTF-8 is not.
    controls * 100 <= chars
}

/// What the frame descriptor and a walk over the block headers say, before lz4_flex decodes anything.
struct Lz4FrameShape {
    /// The content size the header declares, if it declares one.
    declared_size: Option<u64>,
    /// The most the blocks can decode to: stored blocks their length, compressed blocks the block maximum.
    max_output: u64,
}

/// Checks the frame's structure against its length: lz4_flex treats input that ends at a block boundary as a
/// complete frame (skipping the end mark and the content checksum) and ignores bytes after the end mark, so both
/// are caught here, and a block header claiming more bytes than the input holds is refused before a buffer exists.
fn inspect_lz4_frame(frame: &[u8]) -> Result<Lz4FrameShape, CodecError> {
    match frame.get(..4) {
        Some(magic) if magic == LZ4_MAGIC => {}
        Some(magic) if magic == LZ4_LEGACY_MAGIC => return Err(CodecError::LegacyLz4Frame),
        _ => return Err(CodecError::NotLz4Frame),
    }
    let (Some(&flg), Some(&bd)) = (frame.get(4), frame.get(5)) else {
        return Err(lz4_corrupt("truncated frame header"));
    };
    if flg & FLG_VERSION_MASK != FLG_VERSION_01 {
        return Err(lz4_corrupt("unsupported frame version"));
    }
    if flg & FLG_RESERVED != 0 || bd & BD_RESERVED != 0 {
        return Err(lz4_corrupt("reserved bits set in the frame header"));
    }
    if flg & FLG_DICTIONARY_ID != 0 {
        return Err(lz4_corrupt("frame needs a preset dictionary"));
    }
    let max_block: u64 = match (bd >> 4) & 0b111 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        code => return Err(lz4_corrupt(format!("invalid block maximum size code {code}"))),
    };
    let mut pos = 6;
    let declared_size = if flg & FLG_CONTENT_SIZE != 0 {
        let size = read_u64_le(frame, pos).ok_or_else(|| lz4_corrupt("truncated frame header"))?;
        pos += 8;
        Some(size)
    } else {
        None
    };
    // The header checksum byte; lz4_flex verifies it.
    pos += 1;
    if frame.len() < pos {
        return Err(lz4_corrupt("truncated frame header"));
    }

    let block_checksum_len = if flg & FLG_BLOCK_CHECKSUMS != 0 { 4 } else { 0 };
    let mut max_output = 0u64;
    loop {
        let size = read_u32_le(frame, pos).ok_or_else(|| lz4_corrupt("truncated: no end mark"))?;
        pos += 4;
        if size == 0 {
            if flg & FLG_CONTENT_CHECKSUM != 0 {
                pos += 4;
            }
            return match frame.len().cmp(&pos) {
                std::cmp::Ordering::Less => Err(lz4_corrupt("truncated: content checksum missing")),
                std::cmp::Ordering::Greater => Err(lz4_corrupt(format!(
                    "{} bytes after the end of the frame",
                    frame.len() - pos
                ))),
                std::cmp::Ordering::Equal => Ok(Lz4FrameShape {
                    declared_size,
                    max_output,
                }),
            };
        }
        let len = u64::from(size & !BLOCK_UNCOMPRESSED_BIT);
        if len > max_block {
            return Err(lz4_corrupt(format!(
                "block of {len} bytes exceeds the frame's maximum block size {max_block}"
            )));
        }
        // len <= 4 MiB, so this cannot truncate.
        let end = pos + len as usize + block_checksum_len;
        if end > frame.len() {
            return Err(lz4_corrupt("truncated block"));
        }
        max_output += if size & BLOCK_UNCOMPRESSED_BIT != 0 {
            len
        } else {
            max_block
        };
        pos = end;
    }
}

fn read_u32_le(bytes: &[u8], pos: usize) -> Option<u32> {
    let field = bytes.get(pos..pos.checked_add(4)?)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

fn read_u64_le(bytes: &[u8], pos: usize) -> Option<u64> {
    let field = bytes.get(pos..pos.checked_add(8)?)?;
    Some(u64::from_le_bytes(field.try_into().ok()?))
}

fn check_len(expected_len: u64, bytes: &[u8]) -> Result<(), CodecError> {
    let actual = bytes.len() as u64;
    if actual == expected_len {
        Ok(())
    } else {
        Err(CodecError::SizeMismatch {
            expected: expected_len,
            actual,
        })
    }
}

fn lz4_corrupt(message: impl Into<String>) -> CodecError {
    CodecError::Corrupt {
        codec: "lz4",
        message: message.into(),
    }
}

fn zstd_corrupt(message: impl Into<String>) -> CodecError {
    CodecError::Corrupt {
        codec: "zstd",
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::PathBuf;
    use std::process::Command;

    use lz4_flex::frame::{BlockMode, BlockSize};

    const RESUME_06: &str = "06-senior-engineer.jsonresume-schema-1.3.1.json";

    fn corpus_dir() -> PathBuf {
        dossier_testkit::corpus_dir()
    }

    /// Every corpus file of one folder with the given extension, sorted, read in place.
    fn corpus(folder: &str, ext: &str) -> Vec<(String, Vec<u8>)> {
        let dir = corpus_dir().join(folder);
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus folder {} unreadable: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == ext))
            .map(|path| {
                let name = path.file_name().expect("file name").to_string_lossy().into_owned();
                (name, std::fs::read(&path).expect("corpus file"))
            })
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no *.{ext} in {}", dir.display());
        files
    }

    /// The resumes proper, without the schema that sits beside them.
    fn resumes() -> Vec<(String, Vec<u8>)> {
        corpus("resumes", "json")
            .into_iter()
            .filter(|(name, _)| !name.starts_with("schema"))
            .collect()
    }

    fn resume_06() -> Vec<u8> {
        let (_, bytes) = resumes()
            .into_iter()
            .find(|(name, _)| name.contains("06"))
            .expect("resume 06 in the corpus");
        bytes
    }

    fn lz4_frame_without_content_size(data: &[u8], info: FrameInfo) -> Vec<u8> {
        let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(data).expect("write");
        encoder.finish().expect("finish")
    }

    /// A deterministic xorshift stream, so a failing mutation can be replayed.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn is_corrupt(result: &Result<Vec<u8>, CodecError>, codec: &str) -> bool {
        matches!(result, Err(CodecError::Corrupt { codec: c, .. }) if *c == codec)
    }

    #[test]
    fn codec_names_are_the_database_names() {
        for (codec, name) in [(Codec::Raw, "raw"), (Codec::Lz4, "lz4"), (Codec::Zstd, "zstd")] {
            assert_eq!(codec.as_str(), name);
            assert_eq!(codec.to_string(), name);
            assert_eq!(name.parse::<Codec>(), Ok(codec));
        }
        for unknown in ["", "LZ4", "gzip", "zstd "] {
            assert_eq!(
                unknown.parse::<Codec>(),
                Err(CodecError::UnknownCodec(unknown.to_owned()))
            );
        }
    }

    #[test]
    fn every_codec_round_trips_every_corpus_file() {
        let files = [corpus("resumes", "json"), corpus("jobs", "json"), corpus("pdfs", "pdf")].concat();
        assert!(files.len() >= 37, "corpus has {} files", files.len());
        let previous = resume_06();
        for (name, original) in &files {
            for codec in [Codec::Raw, Codec::Lz4, Codec::Zstd] {
                let stored = encode(codec, original).expect("encode");
                let back =
                    decode(codec, &stored, original.len() as u64).unwrap_or_else(|e| panic!("{codec} {name}: {e}"));
                assert!(back == *original, "{codec} {name}: bytes differ after the round trip");
            }
            let stored = zstd_compress(original, 3, Some(&previous)).expect("zstd with reference");
            let back = zstd_decompress(&stored, original.len() as u64, Some(&previous)).expect("zstd with reference");
            assert!(back == *original, "zstd+reference {name}: bytes differ");
        }
    }

    #[test]
    fn zero_bytes_round_trip_for_every_codec() {
        for codec in [Codec::Raw, Codec::Lz4, Codec::Zstd] {
            let stored = encode(codec, b"").expect("encode");
            assert_eq!(decode(codec, &stored, 0), Ok(Vec::new()), "{codec}");
            assert!(
                decode(codec, &stored, 1).is_err(),
                "{codec}: empty blob accepted as one byte"
            );
        }
        let stored = zstd_compress(b"", 3, Some(b"previous version")).expect("encode");
        assert_eq!(zstd_decompress(&stored, 0, Some(b"previous version")), Ok(Vec::new()));
        assert_eq!(decode(Codec::Lz4, b"", 0), Err(CodecError::NotLz4Frame));
        assert!(is_corrupt(&decode(Codec::Zstd, b"", 0), "zstd"));
    }

    #[test]
    fn lz4_frame_records_content_size_and_checksum() {
        let original = resume_06();
        let frame = lz4_compress(&original);
        assert_eq!(frame[..4], LZ4_MAGIC);
        assert_ne!(frame[4] & FLG_CONTENT_SIZE, 0, "no content size flag");
        assert_ne!(frame[4] & FLG_CONTENT_CHECKSUM, 0, "no content checksum flag");
        assert_eq!(read_u64_le(&frame, 6), Some(original.len() as u64));
        // A 7.6 KB document gets 64 KiB blocks, which is all a decoder has to reserve for it.
        assert_eq!((frame[5] >> 4) & 0b111, 4);
    }

    #[test]
    fn lz4_frames_are_read_by_the_lz4_command_line_tool() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, original) in resumes() {
            let path = dir.path().join(format!("{name}.lz4"));
            std::fs::write(&path, lz4_compress(&original)).expect("write frame");
            let output = match Command::new("lz4").arg("-d").arg("-c").arg(&path).output() {
                Ok(output) => output,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                    "the `lz4` command-line tool is missing: install Debian's lz4 package \
                     (`apt-get install -y lz4`; scripts/test installs it when missing)"
                ),
                Err(e) => panic!("cannot run lz4: {e}"),
            };
            assert!(
                output.status.success(),
                "lz4 -d {name}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                output.stdout == original,
                "lz4 -d {name}: bytes differ from the original"
            );
        }
    }

    #[test]
    fn lz4_decompress_reads_frames_written_by_the_lz4_command_line_tool() {
        let original = resume_06();
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("resume.json");
        std::fs::write(&input, &original).expect("write input");
        // The tool's default (no content size, 4 MiB blocks) and the variant that records the size.
        for flags in [&[][..], &["--content-size"][..], &["-BD", "-B4", "--no-frame-crc"][..]] {
            let output = Command::new("lz4")
                .args(flags)
                .args(["-c", "-q"])
                .arg(&input)
                .output()
                .expect("the `lz4` command-line tool: install Debian's lz4 package (`apt-get install -y lz4`)");
            assert!(output.status.success(), "lz4 {flags:?} failed");
            let back = lz4_decompress(&output.stdout, original.len() as u64);
            assert!(back.as_deref() == Ok(&original[..]), "lz4 {flags:?}: {:?}", back.err());
            assert!(
                lz4_decompress(&output.stdout, original.len() as u64 - 1).is_err(),
                "lz4 {flags:?}: short"
            );
        }
    }

    #[test]
    fn lz4_every_truncation_is_an_error() {
        let frame = lz4_compress(&resume_06());
        for len in 0..frame.len() {
            let result = lz4_decompress(&frame[..len], 7631);
            match len {
                0..4 => assert_eq!(result, Err(CodecError::NotLz4Frame), "cut at {len}"),
                _ => assert!(is_corrupt(&result, "lz4"), "cut at {len}: {result:?}"),
            }
        }
        // Cut right after the last block: lz4_flex alone would accept this as a complete frame.
        let cut = &frame[..frame.len() - 8];
        assert!(is_corrupt(&lz4_decompress(cut, 7631), "lz4"));
    }

    #[test]
    fn lz4_flipped_byte_never_decodes_to_other_bytes() {
        let original = resume_06();
        for frame in [
            lz4_compress(&original),
            lz4_frame_without_content_size(&original, FrameInfo::new().content_checksum(true)),
            lz4_frame_without_content_size(
                &original,
                FrameInfo::new()
                    .block_mode(BlockMode::Linked)
                    .block_checksums(true)
                    .content_checksum(true),
            ),
        ] {
            let mut errors = 0;
            for pos in 0..frame.len() {
                let mut bad = frame.clone();
                bad[pos] ^= 0x20;
                match lz4_decompress(&bad, original.len() as u64) {
                    Ok(back) => assert!(back == original, "flip at {pos} decoded to other bytes"),
                    Err(_) => errors += 1,
                }
            }
            // Only the block-independence flag can flip harmlessly, and only if the header checksum byte collides.
            assert!(errors >= frame.len() - 1, "{errors} errors for {} flips", frame.len());
        }
        // A flip deep in the compressed data is caught by the content checksum.
        let mut bad = lz4_compress(&original);
        let middle = bad.len() / 2;
        bad[middle] ^= 0x01;
        assert!(is_corrupt(&lz4_decompress(&bad, original.len() as u64), "lz4"));
    }

    #[test]
    fn lz4_random_damage_never_panics_or_decodes_to_other_bytes() {
        let original = resume_06();
        let frame = lz4_compress(&original);
        let mut state = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..3000 {
            let mut bad = frame.clone();
            for _ in 0..1 + xorshift(&mut state) % 4 {
                let pos = (xorshift(&mut state) % bad.len() as u64) as usize;
                bad[pos] = xorshift(&mut state) as u8;
            }
            if let Ok(back) = lz4_decompress(&bad, original.len() as u64) {
                assert!(back == original, "damaged frame decoded to other bytes");
            }
        }
    }

    #[test]
    fn lz4_block_size_ff_ff_ff_ff_is_corrupt() {
        let frame = lz4_compress(b"hello hello hello hello");
        // Magic, FLG, BD, 8-byte content size, header checksum: the first block header starts at 15.
        let mut bad = frame[..15].to_vec();
        bad.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        bad.extend_from_slice(&frame[19..]);
        let result = lz4_decompress(&bad, 23);
        assert!(is_corrupt(&result, "lz4"), "{result:?}");
    }

    #[test]
    fn lz4_header_declaring_2_pow_62_bytes_is_refused_before_decoding() {
        let original = resume_06();
        // lz4_flex writes the header (with a valid header checksum) and the blocks, then refuses to finish a
        // frame whose declared size is a lie; give it the end mark and a checksum ourselves.
        let info = FrameInfo::new().content_size(Some(1 << 62)).content_checksum(true);
        let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(&original).expect("write");
        assert!(encoder.try_finish().is_err());
        let mut hostile = encoder.into_inner();
        hostile.extend_from_slice(&[0, 0, 0, 0, 0xDE, 0xAD, 0xBE, 0xEF]);
        assert_eq!(read_u64_le(&hostile, 6), Some(1 << 62));

        // The declared size is what is reported: the function looked at the header and stopped.
        let result = lz4_decompress(&hostile, original.len() as u64);
        assert_eq!(
            result,
            Err(CodecError::SizeMismatch {
                expected: original.len() as u64,
                actual: 1 << 62
            })
        );
        // Even when the database row agrees with the header, no 4 EiB buffer is reserved: the block walk bounds
        // the output to one 64 KiB block and the frame decodes to its real length.
        let result = lz4_decompress(&hostile, 1 << 62);
        assert!(is_corrupt(&result, "lz4"), "{result:?}");
    }

    #[test]
    fn lz4_output_stops_at_the_expected_length() {
        let original = resume_06();
        let frame = lz4_frame_without_content_size(&original, FrameInfo::new().content_checksum(true));
        assert_eq!(
            lz4_decompress(&frame, 100),
            Err(CodecError::SizeMismatch {
                expected: 100,
                actual: 101
            })
        );
        assert_eq!(
            lz4_decompress(&frame, original.len() as u64 + 1),
            Err(CodecError::SizeMismatch {
                expected: original.len() as u64 + 1,
                actual: original.len() as u64
            })
        );
        // A huge expected length from a bad row reserves only what the frame's blocks can hold.
        assert_eq!(
            lz4_decompress(&frame, u64::MAX),
            Err(CodecError::SizeMismatch {
                expected: u64::MAX,
                actual: original.len() as u64
            })
        );
        let four_mib_blocks = lz4_frame_without_content_size(
            &original,
            FrameInfo::new().block_size(BlockSize::Max4MB).content_checksum(true),
        );
        assert_eq!(lz4_decompress(&four_mib_blocks, original.len() as u64), Ok(original));
    }

    #[test]
    fn lz4_raw_block_is_not_a_frame() {
        let block = lz4_flex::block::compress(&resume_06());
        assert_eq!(lz4_decompress(&block, 7631), Err(CodecError::NotLz4Frame));
        let prepended = lz4_flex::block::compress_prepend_size(&resume_06());
        assert_eq!(lz4_decompress(&prepended, 7631), Err(CodecError::NotLz4Frame));
    }

    #[test]
    fn lz4_legacy_frame_is_refused() {
        let original = resume_06();
        // The legacy format: magic, then blocks of a 4-byte compressed length and LZ4 block data (`lz4 -l`).
        let block = lz4_flex::block::compress(&original);
        let mut legacy = LZ4_LEGACY_MAGIC.to_vec();
        legacy.extend_from_slice(&(block.len() as u32).to_le_bytes());
        legacy.extend_from_slice(&block);
        assert_eq!(
            lz4_decompress(&legacy, original.len() as u64),
            Err(CodecError::LegacyLz4Frame)
        );
        assert_eq!(
            decode(Codec::Lz4, &legacy, original.len() as u64),
            Err(CodecError::LegacyLz4Frame)
        );
    }

    #[test]
    fn wrong_expected_len_is_an_error_for_every_codec() {
        let original = resume_06();
        let len = original.len() as u64;
        for codec in [Codec::Raw, Codec::Lz4, Codec::Zstd] {
            let stored = encode(codec, &original).expect("encode");
            for wrong in [0, len - 1, len + 1, 1 << 62] {
                let result = decode(codec, &stored, wrong);
                // Raw, and frames that record their size, report the real size.
                assert_eq!(
                    result,
                    Err(CodecError::SizeMismatch {
                        expected: wrong,
                        actual: len
                    }),
                    "{codec}"
                );
            }
        }
        assert_eq!(
            lz4_decompress(&lz4_compress(&original), len - 1),
            Err(CodecError::SizeMismatch {
                expected: len - 1,
                actual: len
            })
        );
    }

    #[test]
    fn zstd_every_truncation_is_corrupt() {
        let original = resume_06();
        let stored = zstd_compress(&original, 3, None).expect("encode");
        for len in 0..stored.len() {
            let result = zstd_decompress(&stored[..len], original.len() as u64, None);
            assert!(is_corrupt(&result, "zstd"), "cut at {len}: {result:?}");
        }
        let mut longer = stored.clone();
        longer.extend_from_slice(&stored);
        assert!(is_corrupt(
            &zstd_decompress(&longer, original.len() as u64, None),
            "zstd"
        ));
    }

    #[test]
    fn zstd_flipped_byte_never_decodes_to_other_bytes() {
        let original = resume_06();
        let previous = {
            let mut previous = original.clone();
            previous.truncate(6000);
            previous
        };
        for reference in [None, Some(&previous[..])] {
            let stored = zstd_compress(&original, 3, reference).expect("encode");
            let mut errors = 0;
            for pos in 0..stored.len() {
                let mut bad = stored.clone();
                bad[pos] ^= 0x20;
                match zstd_decompress(&bad, original.len() as u64, reference) {
                    Ok(back) => assert!(back == original, "flip at {pos} decoded to other bytes"),
                    Err(_) => errors += 1,
                }
            }
            assert!(
                errors * 10 >= stored.len() * 9,
                "{errors} errors for {} flips",
                stored.len()
            );
            let mut bad = stored.clone();
            let middle = bad.len() / 2;
            bad[middle] ^= 0x01;
            assert!(is_corrupt(
                &zstd_decompress(&bad, original.len() as u64, reference),
                "zstd"
            ));
        }
    }

    #[test]
    fn zstd_random_damage_never_panics_or_decodes_to_other_bytes() {
        let original = resume_06();
        let stored = zstd_compress(&original, 3, None).expect("encode");
        let mut state = 0x2545_F491_4F6C_DD1D;
        for _ in 0..3000 {
            let mut bad = stored.clone();
            for _ in 0..1 + xorshift(&mut state) % 4 {
                let pos = (xorshift(&mut state) % bad.len() as u64) as usize;
                bad[pos] = xorshift(&mut state) as u8;
            }
            if let Ok(back) = zstd_decompress(&bad, original.len() as u64, None) {
                assert!(back == original, "damaged frame decoded to other bytes");
            }
        }
    }

    #[test]
    fn zstd_header_declaring_2_pow_62_bytes_is_refused_before_decoding() {
        // Magic, frame header descriptor 0xE0 (8-byte content size, single segment), the size, then one empty
        // last raw block: a well-formed header that lies about its size.
        let mut hostile = ZSTD_MAGIC.to_vec();
        hostile.push(0xE0);
        hostile.extend_from_slice(&(1u64 << 62).to_le_bytes());
        hostile.extend_from_slice(&[0x01, 0x00, 0x00]);
        assert_eq!(
            zstd_decompress(&hostile, 5000, None),
            Err(CodecError::SizeMismatch {
                expected: 5000,
                actual: 1 << 62
            })
        );
    }

    #[test]
    fn zstd_with_wrong_or_missing_reference_is_an_error() {
        let original = resume_06();
        let edited = edit_three_fields(&original);
        let stored = zstd_compress(&edited, 3, Some(&original)).expect("encode");
        let len = edited.len() as u64;
        let other = resumes()
            .into_iter()
            .find(|(name, _)| name.contains("09"))
            .expect("resume 09")
            .1;
        for (what, reference) in [("other resume", Some(&other[..])), ("no reference", None)] {
            let result = zstd_decompress(&stored, len, reference);
            assert!(is_corrupt(&result, "zstd"), "{what}: {result:?}");
        }
        assert_eq!(zstd_decompress(&stored, len, Some(&original)), Ok(edited));
    }

    /// Resume 06 with its name, email and phone changed: a typical small edit between two versions.
    fn edit_three_fields(original: &[u8]) -> Vec<u8> {
        let text = std::str::from_utf8(original).expect("resume is UTF-8");
        let edits = [
            ("\"Dr. Lena Vasquez\"", "\"Dr. Lena Vasquez-Okafor\""),
            ("\"lena.vasquez@example.com\"", "\"lena.okafor@example.org\""),
            ("\"(415) 555-0117\"", "\"(628) 555-0199\""),
        ];
        let mut edited = text.to_owned();
        for (from, to) in edits {
            assert_eq!(edited.matches(from).count(), 1, "{from} is not unique in resume 06");
            edited = edited.replacen(from, to, 1);
        }
        edited.into_bytes()
    }

    #[test]
    fn zstd_small_edit_against_the_previous_version_is_under_1_kib() {
        let (name, original) = resumes()
            .into_iter()
            .find(|(name, _)| name.contains("06"))
            .expect("resume 06");
        assert_eq!(name, RESUME_06);
        let edited = edit_three_fields(&original);
        assert_ne!(edited, original);

        let with_reference = zstd_compress(&edited, 3, Some(&original)).expect("encode");
        let without_reference = zstd_compress(&edited, 3, None).expect("encode");
        assert!(
            with_reference.len() < 1024,
            "{} bytes with the previous version",
            with_reference.len()
        );
        assert!(
            without_reference.len() > 4 * with_reference.len(),
            "{} bytes without, {} with the previous version",
            without_reference.len(),
            with_reference.len()
        );
        assert_eq!(
            zstd_decompress(&with_reference, edited.len() as u64, Some(&original)),
            Ok(edited)
        );
    }

    #[test]
    fn lz4_worth_it_for_json_not_for_incompressible_pdfs() {
        for (name, bytes) in [resumes(), corpus("jobs", "json")].concat() {
            assert!(lz4_worth_it(&bytes, 0.10), "{name}: JSON should be worth compressing");
        }
        let pdfs = corpus("pdfs", "pdf");
        // The PDFs whose streams are already deflated all through: LZ4 saves under 5 % on them.
        for prefix in ["06-", "09-", "13-", "16-", "18-", "26-", "28-", "31-", "32-", "35-"] {
            let (name, bytes) = pdfs
                .iter()
                .find(|(name, _)| name.starts_with(prefix))
                .expect("corpus PDF");
            assert!(!lz4_worth_it(bytes, 0.10), "{name}: LZ4 should not be worth it");
        }
        // Not every PDF is incompressible: the LibreOffice form and the ReportLab guide carry uncompressed content
        // streams and LZ4 halves their first 64 KiB.
        for prefix in ["21-", "27-"] {
            let (name, bytes) = pdfs
                .iter()
                .find(|(name, _)| name.starts_with(prefix))
                .expect("corpus PDF");
            assert!(lz4_worth_it(bytes, 0.10), "{name}: LZ4 should be worth it");
        }
        let not_worth = pdfs.iter().filter(|(_, bytes)| !lz4_worth_it(bytes, 0.10)).count();
        assert!(
            not_worth * 2 > pdfs.len(),
            "only {not_worth} of {} PDFs said no",
            pdfs.len()
        );
        assert!(!lz4_worth_it(b"", 0.10));
        assert!(lz4_worth_it(&[b'a'; 1000], 0.10));
    }

    #[test]
    fn is_text_by_content() {
        for (name, bytes) in [corpus("resumes", "json"), corpus("jobs", "json")].concat() {
            assert!(is_text(&bytes), "{name} is text");
        }
        for (name, bytes) in corpus("pdfs", "pdf") {
            assert!(!is_text(&bytes), "{name} is not text");
        }
        assert!(is_text("履歴書: 田中太郎\nالسيرة الذاتية\tcafé\r\n".as_bytes()));
        // LaTeX with a page break (form feed) between two pages of prose is still text.
        let page = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. ".repeat(3);
        let latex = format!("\\documentclass{{article}}\n\\begin{{document}}\n{page}\x0c{page}\\end{{document}}\n");
        assert!(is_text(latex.as_bytes()));
        assert!(!is_text(b"plain text with a \0 in it"));
        assert!(!is_text(b"\x1b[31m\x1b[0m\x07\x08"));
        assert!(!is_text(&[0xFF, 0xFE, b'a', 0, b'b', 0]));
        // A multi-byte character cut by the 64 KiB probe is fine; one cut at the real end is not UTF-8.
        let mut long = "a".repeat(PROBE_LEN - 1).into_bytes();
        long.extend_from_slice("履歴書".as_bytes());
        assert!(is_text(&long));
        assert!(!is_text(&"履".as_bytes()[..2]));
    }
}
