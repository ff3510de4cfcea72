//! A Dockerfile read into stages and instructions, enough to check statically what an image
//! builds and runs: `FROM` references, `cargo build` lines, `COPY --from`, `USER`, `ENTRYPOINT`
//! and `CMD` (no Docker engine runs here).

/// One instruction: the keyword (upper case) and its arguments, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    pub keyword: String,
    pub args: String,
}

/// A build stage: its `FROM` and the instructions after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The base image reference (`rust:1.95-slim-bookworm`).
    pub image: String,
    /// The `AS` name, if any.
    pub alias: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// A `cargo build` command found in a `RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CargoBuild {
    pub package: Option<String>,
    pub bin: Option<String>,
    pub release: bool,
    pub locked: bool,
}

/// Why a Dockerfile cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("line {line}: {keyword} before the first FROM")]
    BeforeFrom { line: usize, keyword: String },
    #[error("line {line}: FROM without an image")]
    EmptyFrom { line: usize },
    #[error("no FROM instruction")]
    NoStages,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The stages of a Dockerfile, in order.
pub fn parse(text: &str) -> Result<Vec<Stage>> {
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions(text) {
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction
                .args
                .split_whitespace()
                .filter(|word| !word.starts_with("--"))
                .collect();
            let image = words.first().ok_or(Error::EmptyFrom {
                line: instruction.line,
            })?;
            let alias = match words.as_slice() {
                [_, keyword, name] if keyword.eq_ignore_ascii_case("as") => {
                    Some((*name).to_owned())
                }
                _ => None,
            };
            stages.push(Stage {
                image: (*image).to_owned(),
                alias,
                instructions: Vec::new(),
            });
        } else if instruction.keyword == "ARG" && stages.is_empty() {
            // Global ARGs may precede the first FROM.
        } else {
            match stages.last_mut() {
                Some(stage) => stage.instructions.push(instruction),
                None => {
                    return Err(Error::BeforeFrom {
                        line: instruction.line,
                        keyword: instruction.keyword,
                    });
                }
            }
        }
    }
    if stages.is_empty() {
        return Err(Error::NoStages);
    }
    Ok(stages)
}

/// The instructions of a Dockerfile: comment lines dropped, `\` continuations joined.
pub fn instructions(text: &str) -> Vec<Instruction> {
    let mut found = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (body, continues) = match trimmed.strip_suffix('\\') {
            Some(body) => (body.trim_end(), true),
            None => (trimmed, false),
        };
        let (line, mut joined) = current.take().unwrap_or((index + 1, String::new()));
        if !joined.is_empty() && !body.is_empty() {
            joined.push(' ');
        }
        joined.push_str(body);
        if continues {
            current = Some((line, joined));
        } else if let Some(instruction) = split_keyword(line, &joined) {
            found.push(instruction);
        }
    }
    if let Some((line, joined)) = current
        && let Some(instruction) = split_keyword(line, &joined)
    {
        found.push(instruction);
    }
    found
}

fn split_keyword(line: usize, text: &str) -> Option<Instruction> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    Some(Instruction {
        line,
        keyword: keyword.to_ascii_uppercase(),
        args: args.trim().to_owned(),
    })
}

impl Stage {
    /// The instructions with this keyword.
    pub fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a Instruction> + 'a {
        self.instructions
            .iter()
            .filter(move |instruction| instruction.keyword == keyword)
    }

    /// The last instruction with this keyword (the one that takes effect).
    pub fn last(&self, keyword: &str) -> Option<&Instruction> {
        self.instructions
            .iter()
            .rev()
            .find(|instruction| instruction.keyword == keyword)
    }

    /// Every `cargo build` in this stage's `RUN`s.
    pub fn cargo_builds(&self) -> Vec<CargoBuild> {
        self.all("RUN")
            .flat_map(|run| cargo_builds(&run.args))
            .collect()
    }
}

/// The `cargo build` commands of a shell command line (split at `&&`, `||`, `;`).
pub fn cargo_builds(command: &str) -> Vec<CargoBuild> {
    command
        .split("&&")
        .flat_map(|part| part.split("||"))
        .flat_map(|part| part.split(';'))
        .filter_map(|part| {
            let words: Vec<&str> = part.split_whitespace().collect();
            let at = words
                .windows(2)
                .position(|pair| pair == ["cargo", "build"])?;
            let mut build = CargoBuild::default();
            let mut rest = words.iter().skip(at + 2);
            while let Some(word) = rest.next() {
                match *word {
                    "-p" | "--package" => build.package = rest.next().map(|w| (*w).to_owned()),
                    "--bin" => build.bin = rest.next().map(|w| (*w).to_owned()),
                    "--release" => build.release = true,
                    "--locked" => build.locked = true,
                    other => {
                        if let Some(value) = other.strip_prefix("--package=") {
                            build.package = Some(value.to_owned());
                        } else if let Some(value) = other.strip_prefix("--bin=") {
                            build.bin = Some(value.to_owned());
                        }
                    }
                }
            }
            Some(build)
        })
        .collect()
}

/// The arguments of an exec-form instruction (`["/bin/x", "--flag"]`); `None` for shell form.
pub fn exec_form(args: &str) -> Option<Vec<String>> {
    serde_json::from_str(args).ok()
}

/// The tag of an image reference (`rust:1.95-slim` -> `1.95-slim`), `None` when it has none.
/// A digest-pinned reference (`…@sha256:…`) answers its digest.
pub fn image_tag(reference: &str) -> Option<&str> {
    if let Some((_, digest)) = reference.split_once('@') {
        return Some(digest);
    }
    let last_component = reference.rsplit('/').next().unwrap_or(reference);
    last_component
        .split_once(':')
        .map(|(_, tag)| tag)
        .filter(|tag| !tag.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# syntax=docker/dockerfile:1\nARG X=1\nFROM rust:1.95 AS build\n# a comment\nRUN apt-get update \\\n    # inner comment\n && cargo build --release --locked -p app --bin app \\\n && cp target/release/app /out/app\nFROM gcr.io/distroless/cc-debian12:nonroot\nCOPY --from=build /out/app /usr/local/bin/app\nUSER 65532:65532\nENTRYPOINT [\"/usr/local/bin/app\"]\n";

    #[test]
    fn stages_carry_their_image_alias_and_instructions() {
        let stages = parse(SAMPLE).expect("parses");
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].image, "rust:1.95");
        assert_eq!(stages[0].alias.as_deref(), Some("build"));
        assert_eq!(stages[1].instructions.len(), 3);
        assert_eq!(
            stages[1].last("USER").map(|u| u.args.as_str()),
            Some("65532:65532")
        );
    }

    #[test]
    fn continued_run_lines_are_joined_and_cargo_build_is_found() {
        let stages = parse(SAMPLE).expect("parses");
        let builds = stages[0].cargo_builds();
        assert_eq!(
            builds,
            vec![CargoBuild {
                package: Some("app".into()),
                bin: Some("app".into()),
                release: true,
                locked: true,
            }]
        );
        assert_eq!(stages[0].instructions[0].line, 5);
    }

    #[test]
    fn exec_form_is_json_and_shell_form_is_none() {
        assert_eq!(
            exec_form(r#"["/usr/local/bin/app", "--x"]"#),
            Some(vec!["/usr/local/bin/app".to_owned(), "--x".to_owned()])
        );
        assert_eq!(exec_form("/usr/local/bin/app --x"), None);
    }

    #[test]
    fn image_tags_ignore_registry_ports() {
        assert_eq!(image_tag("rust:1.95-slim"), Some("1.95-slim"));
        assert_eq!(image_tag("localhost:5000/app"), None);
        assert_eq!(image_tag("localhost:5000/app:0.1.0"), Some("0.1.0"));
        assert_eq!(image_tag("x@sha256:abc"), Some("sha256:abc"));
        assert_eq!(image_tag("busybox"), None);
    }

    #[test]
    fn an_instruction_before_from_is_an_error() {
        assert_eq!(
            parse("RUN true\nFROM x:1\n"),
            Err(Error::BeforeFrom {
                line: 1,
                keyword: "RUN".into()
            })
        );
        assert_eq!(parse("# nothing\n"), Err(Error::NoStages));
    }
}
