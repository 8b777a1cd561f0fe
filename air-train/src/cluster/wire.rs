//! The TCP collective's frames: a tag, a root (for broadcasts), and values or a UTF-8
//! message, little-endian and length-prefixed. Values travel as `f32` where they are `f32` on
//! both ends (a mean's parts and result, a broadcast: half the bytes, no rounding the
//! receiver would not do itself) and as `f64` for sums.

use std::io::{self, Read, Write};

use crate::collective::Op;

/// What a frame carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    /// A rank's part of an operation.
    Call(Op, Vec<f64>),
    /// The root's answer to an operation, at the operation's width.
    Result(Vec<f64>, Width),
    /// The operation failed (the calls diverged); every rank fails with this message.
    Failed(String),
    /// The run is aborted, with the reason.
    Abort(String),
    /// A rank joining: its rank and the world size it expects.
    Hello { rank: u64, world_size: u64 },
    /// The root's answer once every rank has joined.
    Welcome,
}

/// How values travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Width {
    F32,
    F64,
}

impl Width {
    /// The width of `op`'s parts and result: `f32` for what the trainers hold as `f32`.
    pub(crate) fn of(op: Op) -> Self {
        match op {
            Op::Mean | Op::Broadcast(_) => Self::F32,
            Op::Sum | Op::Barrier | Op::Finish => Self::F64,
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::F32 => 1,
            Self::F64 => 0,
        }
    }

    fn bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F64 => 8,
        }
    }
}

const CALL: u8 = 1;
const RESULT: u8 = 2;
const FAILED: u8 = 3;
const ABORT: u8 = 4;
const HELLO: u8 = 5;
const WELCOME: u8 = 6;

/// The most values one frame may announce (8 GiB of `f64`): a corrupt length fails instead
/// of allocating without bound.
const MAX_VALUES: u64 = 1 << 30;

fn op_code(op: Op) -> (u8, u64) {
    match op {
        Op::Mean => (0, 0),
        Op::Sum => (1, 0),
        Op::Broadcast(root) => (2, root as u64),
        Op::Barrier => (3, 0),
        Op::Finish => (4, 0),
    }
}

fn op_from(code: u8, root: u64) -> io::Result<Op> {
    Ok(match code {
        0 => Op::Mean,
        1 => Op::Sum,
        2 => Op::Broadcast(usize::try_from(root).map_err(|_| invalid("broadcast root"))?),
        3 => Op::Barrier,
        4 => Op::Finish,
        _ => return Err(invalid("operation code")),
    })
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed frame: bad {what}"),
    )
}

/// Writes one frame (one `write_all` of the whole buffer).
pub(crate) fn write(stream: &mut impl Write, frame: &Frame) -> io::Result<()> {
    write_encoded(stream, &encode(frame))
}

/// Writes a frame [`encode`] made (to send one frame to many ranks, encoded once).
pub(crate) fn write_encoded(stream: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes)?;
    stream.flush()
}

/// One frame's bytes.
pub(crate) fn encode(frame: &Frame) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut values = |tag: u8, op: u8, root: u64, (v, width): (&[f64], Width)| {
        buf.reserve(18 + v.len() * width.bytes());
        buf.push(tag);
        buf.push(op);
        buf.extend(root.to_le_bytes());
        buf.extend((v.len() as u64).to_le_bytes());
        match width {
            // The values are f32 widened (or a mean the receiver narrows to f32 anyway).
            Width::F32 => v.iter().for_each(|x| buf.extend((*x as f32).to_le_bytes())),
            Width::F64 => v.iter().for_each(|x| buf.extend(x.to_le_bytes())),
        }
    };
    match frame {
        Frame::Call(op, v) => {
            let (code, root) = op_code(*op);
            values(CALL, code, root, (v, Width::of(*op)));
        }
        Frame::Result(v, width) => values(RESULT, width.code(), 0, (v, *width)),
        Frame::Hello { rank, world_size } => {
            buf.push(HELLO);
            buf.push(0);
            buf.extend(rank.to_le_bytes());
            buf.extend(world_size.to_le_bytes());
        }
        Frame::Welcome => {
            buf.extend([WELCOME, 0]);
            buf.extend(0u64.to_le_bytes());
            buf.extend(0u64.to_le_bytes());
        }
        Frame::Failed(m) | Frame::Abort(m) => {
            buf.push(if matches!(frame, Frame::Failed(_)) {
                FAILED
            } else {
                ABORT
            });
            buf.push(0);
            buf.extend(0u64.to_le_bytes());
            buf.extend((m.len() as u64).to_le_bytes());
            buf.extend(m.as_bytes());
        }
    }
    buf
}

fn u64_from(stream: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    stream.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Reads one frame.
pub(crate) fn read(stream: &mut impl Read) -> io::Result<Frame> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head)?;
    let root = u64_from(stream)?;
    let len = u64_from(stream)?;
    let values = |stream: &mut dyn Read, width: Width| -> io::Result<Vec<f64>> {
        if len > MAX_VALUES {
            return Err(invalid("length"));
        }
        let mut bytes = vec![0u8; len as usize * width.bytes()];
        stream.read_exact(&mut bytes)?;
        Ok(match width {
            Width::F32 => bytes
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
                .collect(),
            Width::F64 => bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        })
    };
    let text = |stream: &mut dyn Read| -> io::Result<String> {
        if len > 1 << 20 {
            return Err(invalid("message length"));
        }
        let mut bytes = vec![0u8; len as usize];
        stream.read_exact(&mut bytes)?;
        String::from_utf8(bytes).map_err(|_| invalid("message"))
    };
    Ok(match head[0] {
        CALL => {
            let op = op_from(head[1], root)?;
            Frame::Call(op, values(stream, Width::of(op))?)
        }
        RESULT => {
            let width = match head[1] {
                0 => Width::F64,
                1 => Width::F32,
                _ => return Err(invalid("value width")),
            };
            Frame::Result(values(stream, width)?, width)
        }
        FAILED => Frame::Failed(text(stream)?),
        ABORT => Frame::Abort(text(stream)?),
        HELLO => Frame::Hello {
            rank: root,
            world_size: len,
        },
        WELCOME => Frame::Welcome,
        _ => return Err(invalid("tag")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        for frame in [
            Frame::Call(Op::Mean, vec![1.5, -2.0]),
            Frame::Call(Op::Broadcast(3), vec![]),
            Frame::Call(Op::Finish, vec![]),
            Frame::Result(vec![f64::MAX, 0.1], Width::F64),
            Frame::Result(vec![1.5, -0.25], Width::F32),
            Frame::Failed("calls diverged".to_owned()),
            Frame::Abort("rank 2 lost".to_owned()),
            Frame::Hello {
                rank: 2,
                world_size: 4,
            },
            Frame::Welcome,
        ] {
            let mut buf = Vec::new();
            write(&mut buf, &frame).unwrap();
            assert_eq!(read(&mut buf.as_slice()).unwrap(), frame);
        }
        // f32 frames carry f32 values exactly, in half the bytes.
        let (mut narrow, mut wide) = (Vec::new(), Vec::new());
        let v = vec![f64::from(0.1f32); 100];
        write(&mut narrow, &Frame::Call(Op::Mean, v.clone())).unwrap();
        write(&mut wide, &Frame::Call(Op::Sum, v.clone())).unwrap();
        assert_eq!((narrow.len() - 18) * 2, wide.len() - 18);
        assert_eq!(
            read(&mut narrow.as_slice()).unwrap(),
            Frame::Call(Op::Mean, v)
        );
        assert!(read(&mut [9u8; 18].as_slice()).is_err());
        let mut huge = vec![RESULT, 0];
        huge.extend(0u64.to_le_bytes());
        huge.extend(u64::MAX.to_le_bytes());
        assert!(read(&mut huge.as_slice()).is_err());
    }
}
