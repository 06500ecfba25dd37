//! memcell: recurrent neural networks (SimpleRNN, LSTM, GRU) and autoencoders for scientific
//! data, with Keras semantics, fused CPU kernels and exact gradients.

pub mod activation;
pub mod autoencoder;
pub mod baselines;
pub mod bench;
pub mod datasets;
pub mod error;
pub mod experiment;
pub mod init;
pub mod io;
pub mod layers;
pub mod loss;
pub mod model;
pub mod optim;
pub mod report;
pub mod simd;
pub mod tensor;
pub mod verify;

pub use error::{Error, Result};
