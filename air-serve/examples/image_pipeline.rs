//! Ray's image pipeline, in Rust: PNG bytes → preprocess (a `Tasks` step: decode, resize,
//! center-crop 224, normalise) → two CNN classifiers on burn (`Replicas { num_replicas: 2 }`
//! each) → both top-5 lists; and a business rule that sends colour images to the wide model
//! and grey ones to the narrow one. Called in-process, then over HTTP.
//!
//! ```text
//! cargo run --release -p air-serve --example image_pipeline -- [--image photo.png] [--port 8000 --serve]
//! curl --data-binary @photo.png http://127.0.0.1:8000/classify
//! ```
//!
//! Without `--image` it classifies a 720 × 720 black image (Ray's example input). The models'
//! weights are drawn from fixed seeds (pretrained ResNets cannot be downloaded here), so the
//! classes mean nothing; the pipeline around them is the point.

#[path = "vision/mod.rs"]
mod vision;

use std::{
    io::{Cursor, Read, Write},
    net::TcpStream,
};

use air_serve::{
    ServeConfig, Server,
    pipeline::{PipelineConfig, RawBytes},
};
use anyhow::Context;

/// Classify a PNG with two CNNs, in-process and over HTTP.
#[derive(Debug, clap::Parser)]
struct Args {
    /// A PNG file (default: a 720 × 720 black image).
    #[arg(long)]
    image: Option<std::path::PathBuf>,
    /// The HTTP port (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Keep serving after the demonstration, until interrupted.
    #[arg(long)]
    serve: bool,
}

fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    let png = match &args.image {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => {
            let mut bytes = Vec::new();
            image::RgbImage::new(720, 720)
                .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)?;
            bytes
        }
    };
    let layout = vision::Layout::default();
    let ensemble = vision::ensemble(layout).deploy_with(PipelineConfig::new("classify"))?;
    let routed = vision::routed(layout)?.deploy_with(PipelineConfig::new("route"))?;
    for step in ensemble.steps() {
        println!(
            "step {:<10} {:?} <- {:?}",
            step.name, step.mode, step.inputs
        );
    }
    let lists = ensemble.call(png.clone())?;
    println!(
        "in-process, both models: {}",
        serde_json::to_string(&lists)?
    );
    let picked = routed.call(png.clone())?;
    println!(
        "in-process, the model the rule picked: {}",
        serde_json::to_string(&picked)?
    );

    let server = Server::new(ServeConfig::new().with_port(args.port))
        .with_pipeline(&ensemble, RawBytes)?
        .with_pipeline(&routed, RawBytes)?
        .start()?;
    let answer = post(server.addr(), "/classify", &png)?;
    println!("over HTTP, POST {}/classify: {answer}", server.url());
    anyhow::ensure!(
        serde_json::from_str::<Vec<vision::Top5>>(&answer)? == lists,
        "the HTTP answer differs from the in-process one"
    );
    if args.serve {
        println!(
            "serving {url}/classify and {url}/route; try: curl --data-binary @photo.png {url}/classify",
            url = server.url()
        );
        loop {
            std::thread::park();
        }
    }
    server.shutdown()?;
    Ok(())
}

/// A bare HTTP/1.1 POST; the answer's body.
fn post(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").context("an HTTP answer")?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    Ok(body.to_owned())
}
