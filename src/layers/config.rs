//! Layers from Keras layer configs (`{"class_name": "LSTM", "config": {...}}`), and back.
//!
//! Keys that change what is computed are read; keys that do not (initializers, constraints,
//! dtype policy, trainable, ...) are ignored. An unsupported layer or option is an error that
//! names it, never a silent difference.

use super::*;
use crate::activation::Activation;
use serde_json::Value;

fn get_bool(cfg: &Value, key: &str, default: bool) -> Result<bool> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(Error::config(format!("'{key}' must be true or false, got {v}"))),
    }
}

fn get_f64(cfg: &Value, key: &str, default: f64) -> Result<f64> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_f64().ok_or_else(|| Error::config(format!("'{key}' must be a number, got {v}"))),
    }
}

fn get_activation(cfg: &Value, key: &str, default: Activation) -> Result<Activation> {
    match cfg.get(key) {
        None => Ok(default),
        Some(Value::Null) => Ok(Activation::Linear),
        Some(Value::String(s)) => Activation::parse(s),
        // Keras may serialise as {"class_name": "function", "config": "tanh"} or
        // {"module": ..., "class_name": ..., "config": {"name": "tanh"}}.
        Some(v) => {
            let name = v
                .get("config")
                .and_then(|c| {
                    c.as_str()
                        .map(str::to_string)
                        .or_else(|| c.get("name").and_then(|n| n.as_str()).map(str::to_string))
                })
                .ok_or_else(|| Error::config(format!("'{key}': cannot read activation {v}")))?;
            Activation::parse(&name)
        }
    }
}

fn name_of(cfg: &Value, default: &str) -> String {
    cfg.get("name").and_then(|n| n.as_str()).unwrap_or(default).to_string()
}

fn elementwise(layer: &str, a: Activation) -> Result<Activation> {
    if a.is_elementwise() {
        Ok(a)
    } else {
        Err(Error::unsupported(format!("activation in layer '{layer}'"), format!("'{}' (not element-wise)", a.name())))
    }
}

fn recurrent<T: Scalar, C: Cell<T>>(cell: C, cfg: &Value) -> Result<Recurrent<T, C>> {
    let mut l = Recurrent::from_cell(cell);
    l.name = name_of(cfg, C::DEFAULT_NAME);
    l.return_sequences = get_bool(cfg, "return_sequences", false)?;
    l.return_state = get_bool(cfg, "return_state", false)?;
    l.go_backwards = get_bool(cfg, "go_backwards", false)?;
    l.stateful = get_bool(cfg, "stateful", false)?;
    l.zero_output_for_mask = get_bool(cfg, "zero_output_for_mask", false)?;
    l.use_bias = get_bool(cfg, "use_bias", true)?;
    l.dropout = check_rate(&l.name, "dropout", get_f64(cfg, "dropout", 0.0)?)?;
    l.recurrent_dropout = check_rate(&l.name, "recurrent_dropout", get_f64(cfg, "recurrent_dropout", 0.0)?)?;
    l.kernel_regularizer = Regularizer::from_json(cfg.get("kernel_regularizer"))?;
    l.recurrent_regularizer = Regularizer::from_json(cfg.get("recurrent_regularizer"))?;
    l.bias_regularizer = Regularizer::from_json(cfg.get("bias_regularizer"))?;
    l.activity_regularizer = Regularizer::from_json(cfg.get("activity_regularizer"))?;
    if get_bool(cfg, "unroll", false)? {
        // Unrolling changes speed, not results: accepted.
    }
    Ok(l)
}

/// Builds one layer from a Keras layer config.
pub fn layer_from_config<T: Scalar>(class_name: &str, cfg: &Value) -> Result<Box<dyn Layer<T>>> {
    let lname = name_of(cfg, &class_name.to_lowercase());
    let ctx = |e: Error| match e {
        Error::Config(m) if !m.starts_with("layer '") => Error::Config(format!("layer '{lname}': {m}")),
        other => other,
    };
    let units = || parse_units(&lname, cfg.get("units"));
    let layer: Box<dyn Layer<T>> = match class_name {
        "Dense" => {
            let mut d = Dense::new(units()?);
            d.name = lname.clone();
            d.activation = get_activation(cfg, "activation", Activation::Linear).map_err(ctx)?;
            d.use_bias = get_bool(cfg, "use_bias", true).map_err(ctx)?;
            d.kernel_regularizer = Regularizer::from_json(cfg.get("kernel_regularizer"))?;
            d.bias_regularizer = Regularizer::from_json(cfg.get("bias_regularizer"))?;
            d.activity_regularizer = Regularizer::from_json(cfg.get("activity_regularizer"))?;
            d.activity_sparsity = KlSparsity::from_json(cfg.get("activity_sparsity")).map_err(ctx)?;
            Box::new(d)
        }
        "SimpleRNN" => {
            let cell = SimpleRnnCell {
                units: units()?,
                activation: elementwise(&lname, get_activation(cfg, "activation", Activation::Tanh).map_err(ctx)?)?,
            };
            Box::new(recurrent::<T, _>(cell, cfg).map_err(ctx)?)
        }
        "LSTM" => {
            let cell = LstmCell {
                units: units()?,
                activation: elementwise(&lname, get_activation(cfg, "activation", Activation::Tanh).map_err(ctx)?)?,
                recurrent_activation: elementwise(
                    &lname,
                    get_activation(cfg, "recurrent_activation", Activation::Sigmoid).map_err(ctx)?,
                )?,
                unit_forget_bias: get_bool(cfg, "unit_forget_bias", true).map_err(ctx)?,
            };
            Box::new(recurrent::<T, _>(cell, cfg).map_err(ctx)?)
        }
        "GRU" => {
            let cell = GruCell {
                units: units()?,
                activation: elementwise(&lname, get_activation(cfg, "activation", Activation::Tanh).map_err(ctx)?)?,
                recurrent_activation: elementwise(
                    &lname,
                    get_activation(cfg, "recurrent_activation", Activation::Sigmoid).map_err(ctx)?,
                )?,
                reset_after: get_bool(cfg, "reset_after", true).map_err(ctx)?,
            };
            Box::new(recurrent::<T, _>(cell, cfg).map_err(ctx)?)
        }
        "Bidirectional" => {
            let inner = cfg
                .get("layer")
                .ok_or_else(|| Error::config(format!("layer '{lname}': Bidirectional needs 'layer'")))?;
            let inner_class = inner.get("class_name").and_then(|c| c.as_str()).unwrap_or("");
            let inner_cfg = inner.get("config").cloned().unwrap_or(Value::Null);
            if !matches!(inner_class, "SimpleRNN" | "LSTM" | "GRU") {
                return Err(Error::unsupported("layer inside Bidirectional", inner_class));
            }
            let merge = match cfg.get("merge_mode") {
                None => MergeMode::Concat,
                Some(Value::Null) => return Err(Error::unsupported("Bidirectional merge_mode", "None (two outputs)")),
                Some(v) => MergeMode::parse(v.as_str().unwrap_or("?"))?,
            };
            let inner_name = name_of(&inner_cfg, &inner_class.to_lowercase());
            let go_back = get_bool(&inner_cfg, "go_backwards", false)?;
            let mut fcfg = inner_cfg.clone();
            // Keras 3 names the copies "forward_" / "backward_" + the inner name, without
            // doubling a prefix that is already there (a saved config holds "forward_gru").
            fcfg["name"] =
                Value::String(format!("forward_{}", inner_name.strip_prefix("forward_").unwrap_or(&inner_name)));
            let bcfg = match cfg.get("backward_layer").and_then(|b| b.get("config")) {
                Some(b) => b.clone(),
                None => {
                    let mut b = inner_cfg.clone();
                    b["name"] = Value::String(format!(
                        "backward_{}",
                        inner_name.strip_prefix("backward_").unwrap_or(&inner_name)
                    ));
                    b["go_backwards"] = Value::Bool(!go_back);
                    b
                }
            };
            let f = layer_from_config::<T>(inner_class, &fcfg)?;
            let b = layer_from_config::<T>(inner_class, &bcfg)?;
            let rs = get_bool(&inner_cfg, "return_sequences", false)?;
            Box::new(Bidirectional::new(&lname, f, b, merge, rs, inner_cfg))
        }
        "Masking" => {
            let mut m = Masking::new(get_f64(cfg, "mask_value", 0.0)?);
            m.name = lname.clone();
            Box::new(m)
        }
        "Dropout" => {
            let mut d = Dropout::new(check_rate(&lname, "rate", get_f64(cfg, "rate", 0.0)?)?);
            d.name = lname.clone();
            if cfg.get("noise_shape").is_some_and(|v| !v.is_null()) {
                return Err(Error::unsupported("Dropout option", "noise_shape"));
            }
            Box::new(d)
        }
        "GaussianNoise" => {
            let mut g = GaussianNoise::new(get_f64(cfg, "stddev", 0.0)?);
            g.name = lname.clone();
            Box::new(g)
        }
        "Sampling" => {
            let mut s = Sampling::new(get_f64(cfg, "kl_weight", 1.0)?);
            s.name = lname.clone();
            Box::new(s)
        }
        "RepeatVector" => {
            let n = parse_units(&lname, cfg.get("n"))?;
            let mut r = RepeatVector::new(n);
            r.name = lname.clone();
            Box::new(r)
        }
        "Flatten" => {
            let mut f = Flatten::new();
            f.name = lname.clone();
            Box::new(f)
        }
        "Reshape" => {
            let ts = cfg
                .get("target_shape")
                .and_then(|v| v.as_array())
                .ok_or_else(|| Error::config(format!("layer '{lname}': Reshape needs 'target_shape'")))?;
            let ts: Vec<i64> = ts
                .iter()
                .map(|v| {
                    v.as_i64().ok_or_else(|| Error::config(format!("layer '{lname}': bad target_shape entry {v}")))
                })
                .collect::<Result<_>>()?;
            let mut r = Reshape::new(&ts);
            r.name = lname.clone();
            Box::new(r)
        }
        other => {
            return Err(Error::unsupported(
                "layer type",
                format!(
                    "'{other}' (known: Dense, SimpleRNN, LSTM, GRU, Bidirectional, Masking, Dropout, GaussianNoise, Sampling, RepeatVector, \
                     Flatten, Reshape)"
                ),
            ))
        }
    };
    Ok(layer)
}

/// A layer's Keras config entry `{"class_name": ..., "config": ...}`.
pub fn layer_to_config<T: Scalar>(layer: &dyn Layer<T>) -> Value {
    serde_json::json!({"class_name": layer.class_name(), "config": layer.config()})
}
