//! memcell: recurrent neural networks (SimpleRNN, LSTM, GRU) and autoencoders for scientific
//! data, with Keras semantics, fused CPU kernels and exact gradients.

pub mod error;
pub mod io;

pub use error::{Error, Result};
