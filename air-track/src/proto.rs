//! The protobuf messages of TensorBoard's event files and of its HParams plugin, declared by
//! hand with the field numbers of `tensorboard/compat/proto/{event,summary,tensor}.proto`,
//! `tensorboard/plugins/hparams/{api,plugin_data}.proto` and `google/protobuf/struct.proto`
//! (only the fields we write).

#![allow(
    missing_docs,
    unreachable_pub,
    reason = "private mirrors of published .proto messages"
)]

use std::collections::HashMap;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "EventWhat", tags = "3, 5")]
    pub what: Option<EventWhat>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum EventWhat {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    #[prost(oneof = "SummaryKind", tags = "2, 8")]
    pub value: Option<SummaryKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum SummaryKind {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    #[prost(message, tag = "8")]
    Tensor(TensorProto),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// `DT_FLOAT` = 1.
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShape>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShape {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<TensorDim>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorDim {
    #[prost(int64, tag = "1")]
    pub size: i64,
}

// ---- the HParams plugin ----------------------------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    #[prost(int32, tag = "1")]
    pub version: i32,
    #[prost(oneof = "PluginDataKind", tags = "2, 3, 4")]
    pub data: Option<PluginDataKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PluginDataKind {
    #[prost(message, tag = "2")]
    Experiment(Experiment),
    #[prost(message, tag = "3")]
    SessionStartInfo(SessionStartInfo),
    #[prost(message, tag = "4")]
    SessionEndInfo(SessionEndInfo),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Experiment {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(double, tag = "3")]
    pub time_created_secs: f64,
    #[prost(message, repeated, tag = "4")]
    pub hparam_infos: Vec<HParamInfo>,
    #[prost(message, repeated, tag = "5")]
    pub metric_infos: Vec<MetricInfo>,
}

/// `DataType`: STRING 1, BOOL 2, FLOAT64 3.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamInfo {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "4")]
    pub r#type: i32,
    #[prost(message, optional, tag = "5")]
    pub domain_discrete: Option<ListValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricInfo {
    #[prost(message, optional, tag = "1")]
    pub name: Option<MetricName>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricName {
    #[prost(string, tag = "1")]
    pub group: String,
    #[prost(string, tag = "2")]
    pub tag: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    #[prost(map = "string, message", tag = "1")]
    pub hparams: HashMap<String, ProtoValue>,
    #[prost(string, tag = "4")]
    pub group_name: String,
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `Status`: SUCCESS 1, FAILURE 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionEndInfo {
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// `google.protobuf.Value` (the kinds we write).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoValue {
    #[prost(oneof = "ValueKind", tags = "2, 3, 4")]
    pub kind: Option<ValueKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ValueKind {
    #[prost(double, tag = "2")]
    Number(f64),
    #[prost(string, tag = "3")]
    String(String),
    #[prost(bool, tag = "4")]
    Bool(bool),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListValue {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<ProtoValue>,
}
