//! The server's OpenAPI document (`GET /openapi.json`), built with `utoipa`'s typed model: one
//! `POST` per deployment (its input columns when known, the three body forms the adapters read,
//! every answer with its status), the operational `GET` routes, and the JSON error schema.

use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, Paths, Ref, RefOr, Required,
    ResponseBuilder, Schema,
    path::Operation,
    path::{HttpMethod, OperationBuilder},
    request_body::RequestBodyBuilder,
    schema::{
        AdditionalProperties, ArrayBuilder, ComponentsBuilder, ObjectBuilder, OneOfBuilder, Type,
    },
};

use crate::{ServeConfig, deployment::DeploymentHandle, endpoint::Endpoint};

const JSON: &str = "application/json";

/// A schema as the places that take one want it.
fn schema(s: impl Into<Schema>) -> RefOr<Schema> {
    RefOr::T(s.into())
}

fn object() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Object)
}

fn array(items: impl Into<RefOr<Schema>>) -> ArrayBuilder {
    ArrayBuilder::new().items(items.into())
}

/// The error body every non-200 answer carries.
fn error_schema() -> ObjectBuilder {
    object()
        .property("error", ObjectBuilder::new().schema_type(Type::String))
        .property("message", ObjectBuilder::new().schema_type(Type::String))
        .property("status", ObjectBuilder::new().schema_type(Type::Integer))
        .required("error")
        .required("message")
        .required("status")
}

/// One input record: exactly the deployment's input columns when it knows them.
fn record_schema(columns: Option<&[String]>) -> ObjectBuilder {
    let Some(columns) = columns else {
        return object();
    };
    let mut record = object().additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for c in columns {
        record = record.property(c, ObjectBuilder::new()).required(c);
    }
    record
}

/// The three body forms: records, columns, and Ray's `json_to_ndarray` array.
fn request_schema(columns: Option<&[String]>) -> OneOfBuilder {
    let ndarray = object()
        .property("array", ArrayBuilder::new())
        .property(
            "shape",
            array(ObjectBuilder::new().schema_type(Type::Integer)),
        )
        .property(
            "dtype",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["float32", "float64", "int32", "int64"])),
        )
        .property(
            "columns",
            array(ObjectBuilder::new().schema_type(Type::String)),
        )
        .required("array")
        .description(Some("An n-dimensional array (Ray's json_to_ndarray form)."));
    OneOfBuilder::new()
        .item(schema(
            array(record_schema(columns))
                .description(Some("Records."))
                .build(),
        ))
        .item(
            object()
                .additional_properties(Some(ArrayBuilder::new()))
                .description(Some("Columns.")),
        )
        .item(ndarray)
}

fn error_answer(description: String) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Error")))
            .build(),
    )
}

/// The `POST` operation of deployment `h`.
pub(crate) fn predict_operation(h: &DeploymentHandle, config: &ServeConfig) -> OperationBuilder {
    let c = h.config();
    let columns = h.input_columns();
    let predictions = array(object().property("predictions", ObjectBuilder::new()));
    let ok = ResponseBuilder::new()
        .description("One record per input row.")
        .content(
            JSON,
            ContentBuilder::new()
                .schema(Some(schema(predictions.build())))
                .build(),
        );
    let errors = error_answers(
        "Missing or unknown columns, wrong types, empty input.",
        c.max_in_flight(),
        c.max_request_bytes(),
        config,
    );
    let mut op = OperationBuilder::new()
        .summary(Some(format!("Predict with deployment {}", c.name())))
        .operation_id(Some(format!("predict_{}", c.name())))
        .request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    JSON,
                    ContentBuilder::new()
                        .schema(Some(request_schema(columns.as_deref())))
                        .build(),
                )
                .build(),
        ))
        .response("200", ok.build());
    for (code, description) in errors {
        op = op.response(code, error_answer(description).build());
    }
    op
}

/// The error answers of a `POST` route: `invalid` says what a 422 means there.
fn error_answers(
    invalid: &str,
    max_in_flight: usize,
    max_request_bytes: usize,
    config: &ServeConfig,
) -> [(&'static str, String); 5] {
    [
        (
            "400",
            "Malformed JSON, or a body whose framing is broken (chunked encoding, a short \
             Content-Length)."
                .to_owned(),
        ),
        (
            "408",
            format!(
                "The body did not arrive within {} ms, or no answer within the request timeout.",
                config.body_timeout().as_millis()
            ),
        ),
        ("413", format!("Body over {max_request_bytes} bytes.")),
        ("422", invalid.to_owned()),
        (
            "503",
            format!(
                "More than {max_in_flight} requests in flight, or more than {} connections open.",
                config.max_connections()
            ),
        ),
    ]
}

/// What the OpenAPI document says of a pipeline.
pub(crate) struct PipelineDoc<'a> {
    pub(crate) name: &'a str,
    pub(crate) steps: &'a [String],
    pub(crate) media_type: &'a str,
    pub(crate) input_type: &'a str,
    pub(crate) max_in_flight: usize,
    pub(crate) max_request_bytes: usize,
}

/// The `POST` operation of a pipeline.
pub(crate) fn pipeline_operation(doc: PipelineDoc<'_>, config: &ServeConfig) -> Operation {
    let errors = error_answers(
        "A body that does not fit the pipeline's input, or a step that refused its input \
         (the error names the step).",
        doc.max_in_flight,
        doc.max_request_bytes,
        config,
    );
    let mut op = OperationBuilder::new()
        .summary(Some(format!("Call pipeline {}", doc.name)))
        .description(Some(format!(
            "Steps: {}. Input: {}.",
            doc.steps.join(", "),
            doc.input_type
        )))
        .operation_id(Some(format!("call_{}", doc.name)))
        .request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(doc.media_type, ContentBuilder::new().build())
                .build(),
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("The pipeline's output.")
                .content(JSON, ContentBuilder::new().build())
                .build(),
        )
        .response(
            "500",
            error_answer("A step failed or panicked (the error names the step).".to_owned())
                .build(),
        );
    for (code, description) in errors {
        op = op.response(code, error_answer(description).build());
    }
    op.build()
}

/// The document for `endpoints` served under `config`.
pub(crate) fn document(
    endpoints: &[std::sync::Arc<dyn Endpoint>],
    config: &ServeConfig,
) -> OpenApi {
    let mut paths = Paths::new();
    for e in endpoints {
        paths.paths.insert(
            e.route_prefix().to_owned(),
            PathItem::new(HttpMethod::Post, e.operation(config)),
        );
    }
    for (path, summary) in [
        ("/-/healthz", "Liveness."),
        ("/-/routes", "Route prefix → deployment."),
        ("/-/metrics", "Prometheus metrics."),
    ] {
        let op = OperationBuilder::new()
            .summary(Some(summary))
            .response("200", ResponseBuilder::new().description("OK").build());
        paths
            .paths
            .insert(path.to_owned(), PathItem::new(HttpMethod::Get, op.build()));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("AIR for Rust deployments")
                .version(env!("CARGO_PKG_VERSION")),
        )
        .paths(paths)
        .components(Some(
            ComponentsBuilder::new()
                .schema("Error", error_schema())
                .build(),
        ))
        .build()
}
