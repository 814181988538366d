//! マイナポータル inside `jpki serve` (docs/PORTAL.md): what a person who logged in with the card
//! sees of themselves. Their four facts and certificates come from the authority's registry, the
//! access records (with the log's integrity) from the platform's access log, consents, notices and
//! the post box from the platform's registry; each document in the post box is validated when
//! shown. Sessions live in memory for [`SESSION_FOR`] after the last page.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use jpki_authority::CertStatus;
use jpki_model::CertKind;
use jpki_oidc::{AuthorizationRequest, Logins, Scope};
use jpki_platform::api::PersonRefs;
use jpki_platform::{AccessStore, Api, CardProof, Integrity, Registry, Revoker};
use jpki_server::{Block, Cell, PortalPage, Section, Text};
use time::{Duration, OffsetDateTime};

use crate::lookups::RegistryLookups;

/// How long a session lasts after its last page.
pub(crate) const SESSION_FOR: Duration = Duration::minutes(15);

struct Session {
    auth_serial: Vec<u8>,
    person: String,
    csrf: String,
    expires: OffsetDateTime,
}

/// The portal as `jpki serve` runs it.
pub(crate) struct PlatformPortal {
    logins: Logins,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    api: Arc<Api>,
    lookups: Arc<RegistryLookups>,
    registry: Mutex<Registry>,
    access: Mutex<AccessStore>,
    log_spki: Vec<u8>,
    /// The public base URL (known once the server listens).
    base: OnceLock<String>,
    agent: String,
}

fn hash(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref());
    out
}

fn token() -> Result<String, String> {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| "no randomness".to_owned())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

fn jst(t: OffsetDateTime) -> String {
    t.to_offset(time::macros::offset!(+9))
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]"
        ))
        .unwrap_or_default()
}

fn kind_text(kind: CertKind) -> Text {
    match kind {
        CertKind::Signature => Text::new("署名用", "signature"),
        CertKind::Authentication => Text::new("利用者証明用", "authentication"),
    }
}

fn t(ja: &str, en: &str) -> Text {
    Text::new(ja, en)
}

impl PlatformPortal {
    pub(crate) fn new(
        api: Arc<Api>,
        lookups: Arc<RegistryLookups>,
        registry: Registry,
        access: AccessStore,
        log_spki: Vec<u8>,
        agent: &str,
    ) -> Self {
        Self {
            logins: Logins::new(),
            sessions: Mutex::new(HashMap::new()),
            api,
            lookups,
            registry: Mutex::new(registry),
            access: Mutex::new(access),
            log_spki,
            base: OnceLock::new(),
            agent: agent.trim_end_matches('/').to_owned(),
        }
    }

    /// Starts serving at the public base URL `base`.
    pub(crate) fn start(&self, base: &str) {
        let _ = self.base.set(base.trim_end_matches('/').to_owned());
    }

    fn with_session<T>(&self, session: &str, f: impl FnOnce(&Session) -> T) -> Option<T> {
        let now = OffsetDateTime::now_utc();
        let mut all = self.sessions.lock().ok()?;
        let s = all.get_mut(&hash(session))?;
        if s.expires <= now {
            all.remove(&hash(session));
            return None;
        }
        s.expires = now + SESSION_FOR;
        Some(f(s))
    }

    fn home(&self, auth_serial: &[u8]) -> Result<(String, Vec<Section>), String> {
        let authority = self
            .lookups
            .0
            .lock()
            .map_err(|_| "the registry is unavailable".to_owned())?;
        let (resident, certs) = authority
            .holder(auth_serial)
            .map_err(|e| e.to_string())?
            .ok_or("the registry no longer knows your certificate")?;
        drop(authority);
        let f = &resident.facts;
        let sex = match f.sex {
            jpki_model::Sex::Male => t("男", "male"),
            jpki_model::Sex::Female => t("女", "female"),
            _ => t("適用不能", "not applicable"),
        };
        let facts = Block::Facts(vec![
            (t("氏名", "Name"), f.name.to_string()),
            (t("住所", "Address"), f.address.to_string()),
            (t("生年月日", "Date of birth"), f.birth_date.to_string()),
            (t("性別", "Sex"), format!("{} / {}", sex.ja, sex.en)),
        ]);
        let now = OffsetDateTime::now_utc();
        let mut rows = Vec::new();
        let mut held = false;
        for c in &certs {
            let status = match c.status {
                CertStatus::Good if c.not_after > now => Cell::Verdict {
                    good: true,
                    text: t("有効", "valid"),
                },
                CertStatus::Good => Cell::Verdict {
                    good: false,
                    text: t("有効期限切れ", "expired"),
                },
                CertStatus::Hold => {
                    held = true;
                    Cell::Verdict {
                        good: false,
                        text: t("一時停止中（紛失届）", "on hold (reported lost)"),
                    }
                }
                CertStatus::Revoked => Cell::Verdict {
                    good: false,
                    text: Text::new(
                        format!("失効（{}）", c.reason.map(|r| r.to_string()).unwrap_or_default()),
                        format!(
                            "revoked ({})",
                            c.reason.map(|r| r.to_string()).unwrap_or_default()
                        ),
                    ),
                },
            };
            let k = kind_text(c.kind);
            rows.push(vec![
                Cell::Plain(format!("{} / {}", k.ja, k.en)),
                Cell::Plain(c.serial.to_hex()),
                Cell::Plain(c.card_id.clone()),
                status,
                Cell::Plain(jst(c.not_after)),
            ]);
        }
        let mut cert_blocks = vec![Block::Table {
            headers: vec![
                t("種類", "Kind"),
                t("シリアル番号", "Serial"),
                t("カード", "Card"),
                t("状態", "Status"),
                t("有効期限", "Expires"),
            ],
            rows,
            empty: t("電子証明書はありません。", "No certificates."),
        }];
        if held {
            cert_blocks.push(Block::Notice {
                good: false,
                text: t(
                    "紛失届により電子証明書が一時停止されています。カードが見つかったら、市区町村の窓口で一時停止の解除を申請してください（運用者は `jpki card found --card-id ID` で解除します）。見つからない場合は失効の届出をしてください。",
                    "Your certificates are on hold after a loss report. If the card turns up, ask your municipal office to lift the hold (the operator runs `jpki card found --card-id ID`); if not, have them revoked.",
                ),
            });
        }
        Ok((
            f.name.to_string(),
            vec![
                Section {
                    title: t("基本4情報", "Your basic information"),
                    blocks: vec![facts],
                },
                Section {
                    title: t("電子証明書", "Your certificates"),
                    blocks: cert_blocks,
                },
            ],
        ))
    }

    fn records(&self, person: &str) -> Result<Vec<Section>, String> {
        let streams = self
            .access
            .lock()
            .map_err(|_| "the access log is unavailable".to_owned())?
            .check_streams(person, &self.log_spki)
            .map_err(|e| e.to_string())?;
        let mut integrity = Vec::new();
        let mut records: Vec<&jpki_platform::AccessRecord> = Vec::new();
        for s in &streams {
            match &s.integrity {
                Integrity::Intact { records: n, head } => integrity.push(Block::Notice {
                    good: true,
                    text: Text::new(
                        format!(
                            "記録 {n} 件は改ざんされていません（最新の署名: {}）。",
                            head.as_ref()
                                .map_or_else(|| "なし".to_owned(), |h| jst(h.signed_at))
                        ),
                        format!(
                            "All {n} records are intact (last signed {}).",
                            head.as_ref()
                                .map_or_else(|| "never".to_owned(), |h| jst(h.signed_at))
                        ),
                    ),
                }),
                Integrity::Tampered(t) => integrity.push(Block::Notice {
                    good: false,
                    text: Text::new(
                        format!("記録の改ざんを検出しました: {t}"),
                        format!("The log has been tampered with: {t}"),
                    ),
                }),
            }
            records.extend(&s.records);
        }
        records.sort_by_key(|r| std::cmp::Reverse(r.check.at));
        let rows = records
            .iter()
            .map(|r| {
                let k = kind_text(r.check.cert_kind);
                vec![
                    Cell::Plain(jst(r.check.at)),
                    Cell::Plain(r.check.rp_name.clone()),
                    Cell::Plain(format!("{} / {}", k.ja, k.en)),
                    Cell::Plain(r.check.check.clone()),
                    Cell::Plain(r.check.purpose.clone()),
                    Cell::Plain(r.check.result.clone()),
                ]
            })
            .collect();
        integrity.push(Block::Table {
            headers: vec![
                t("日時 (JST)", "When (JST)"),
                t("確認した事業者", "Who"),
                t("証明書", "Certificate"),
                t("確認内容", "Check"),
                t("目的", "Purpose"),
                t("結果", "Result"),
            ],
            rows,
            empty: t(
                "あなたの電子証明書はまだ確認されていません。",
                "Nobody has checked your certificates yet.",
            ),
        });
        Ok(vec![Section {
            title: t("電子証明書の利用履歴", "Who checked your certificates"),
            blocks: integrity,
        }])
    }

    fn consents(&self, person: &str) -> Result<Vec<Section>, String> {
        let reg = self
            .registry
            .lock()
            .map_err(|_| "the registry is unavailable".to_owned())?;
        let consents = reg.consents_of_person(person).map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        for c in consents {
            let name = reg.get(&c.rp_id).map_or_else(|_| c.rp_id.clone(), |rp| rp.name);
            let (status, action) = match c.revoked_at {
                Some(at) => (
                    Cell::Verdict {
                        good: false,
                        text: Text::new(format!("撤回済み {}", jst(at)), format!("withdrawn {}", jst(at))),
                    },
                    Cell::Plain(String::new()),
                ),
                None => (
                    Cell::Verdict {
                        good: true,
                        text: t("有効", "in force"),
                    },
                    Cell::Action {
                        action: "revoke-consent".into(),
                        id: c.id.clone(),
                        label: t("撤回する", "Withdraw"),
                    },
                ),
            };
            rows.push(vec![
                Cell::Plain(name),
                Cell::Plain(t("シリアル番号の紐付け", "serial linkage").ja + " / serial linkage"),
                Cell::Plain(jst(c.given_at)),
                status,
                action,
            ]);
        }
        Ok(vec![Section {
            title: t("事業者への同意", "Consents you gave"),
            blocks: vec![
                Block::Paragraph(t(
                    "同意を撤回すると、その事業者は以後あなたの新しい電子証明書を旧い証明書に紐付けられなくなります。",
                    "Withdrawing a consent stops that service from linking your new certificates to your old ones from now on.",
                )),
                Block::Table {
                    headers: vec![
                        t("事業者", "Service"),
                        t("内容", "What"),
                        t("同意日時", "Given"),
                        t("状態", "Status"),
                        t("操作", "Action"),
                    ],
                    rows,
                    empty: t("同意はありません。", "No consents."),
                },
            ],
        }])
    }

    fn notices(&self, person: &str) -> Result<Vec<Section>, String> {
        let reg = self
            .registry
            .lock()
            .map_err(|_| "the registry is unavailable".to_owned())?;
        let notices = reg.notices_for(person).map_err(|e| e.to_string())?;
        let mut blocks = Vec::new();
        if notices.is_empty() {
            blocks.push(Block::Paragraph(t("お知らせはありません。", "No notices.")));
        }
        for n in notices {
            blocks.push(Block::Facts(vec![
                (t("日時", "When"), jst(n.sent_at)),
                (t("差出人", "From"), n.sender),
                (
                    t("宛先", "To"),
                    if n.to_everyone {
                        "全員 / everyone".into()
                    } else {
                        "あなた / you".into()
                    },
                ),
                (t("件名", "Subject"), n.title),
                (t("本文", "Message"), n.body),
            ]));
        }
        Ok(vec![Section {
            title: t("お知らせ", "Notices"),
            blocks,
        }])
    }

    /// The validation verdict of a delivered document: (passed, words).
    fn verdict(&self, document: &[u8]) -> (bool, String) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(document);
        let body = if document.starts_with(b"%PDF") {
            serde_json::json!({ "pdf": b64 })
        } else {
            serde_json::json!({ "signature": b64 })
        };
        let now = OffsetDateTime::now_utc();
        match self
            .api
            .verify_signature(body.to_string().as_bytes(), &|_| true, now)
        {
            Ok((answer, _)) => {
                let indications: Vec<String> = match answer.get("signatures").and_then(|s| s.as_array()) {
                    Some(list) => list
                        .iter()
                        .filter_map(|s| s["indication"].as_str().map(str::to_owned))
                        .collect(),
                    None => answer["indication"]
                        .as_str()
                        .map(str::to_owned)
                        .into_iter()
                        .collect(),
                };
                let passed = !indications.is_empty() && indications.iter().all(|i| i == "TOTAL_PASSED");
                (passed, indications.join(", "))
            }
            Err((_, e)) => (
                false,
                format!("TOTAL_FAILED: {}", e["error"].as_str().unwrap_or("unreadable")),
            ),
        }
    }

    fn postbox(&self, person: &str) -> Result<Vec<Section>, String> {
        let deliveries = {
            let reg = self
                .registry
                .lock()
                .map_err(|_| "the registry is unavailable".to_owned())?;
            reg.postbox_of(person).map_err(|e| e.to_string())?
        };
        let rows = deliveries
            .iter()
            .map(|d| {
                let (passed, words) = self.verdict(&d.document);
                vec![
                    Cell::Plain(jst(d.sent_at)),
                    Cell::Plain(d.sender.clone()),
                    Cell::Plain(d.title.clone()),
                    Cell::Verdict {
                        good: passed,
                        text: if passed {
                            Text::new(
                                format!("署名は有効です ({words})"),
                                format!("signature valid ({words})"),
                            )
                        } else {
                            Text::new(
                                format!("署名を検証できません ({words})"),
                                format!("signature failed ({words})"),
                            )
                        },
                    },
                ]
            })
            .collect();
        Ok(vec![Section {
            title: t("受信文書", "Documents sent to you"),
            blocks: vec![Block::Table {
                headers: vec![
                    t("受信日時", "Received"),
                    t("差出人", "From"),
                    t("件名", "Title"),
                    t("検証結果", "Validation"),
                ],
                rows,
                empty: t("受信した文書はありません。", "No documents."),
            }],
        }])
    }
}

impl jpki_server::Portal for PlatformPortal {
    fn begin_login(&self, binding: &str) -> Result<(String, String, String, String), String> {
        let base = self.base.get().ok_or("the portal is starting")?;
        let request = AuthorizationRequest {
            client_id: "portal".into(),
            client_name: "マイナポータル".into(),
            redirect_uri: format!("{base}{}", jpki_server::PORTAL_PATH),
            scopes: vec![Scope::OpenId],
            // The browser binding's SHA-256 rides in the state (the portal has no client state).
            state: hex::encode(hash(binding)),
            nonce: "-".into(),
            code_challenge: "-".into(),
        };
        let c = self
            .logins
            .begin(request, OffsetDateTime::now_utc())
            .map_err(|e| e.to_string())?;
        Ok((
            c.tx,
            c.challenge,
            format!("{base}{}/login/card", jpki_server::PORTAL_PATH),
            self.agent.clone(),
        ))
    }

    fn finish_login(&self, form: &[(String, String)], binding: Option<&str>) -> Result<String, String> {
        let field = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let now = OffsetDateTime::now_utc();
        let base = self.base.get().ok_or("the portal is starting")?;
        let origin = jpki_oidc::origin_of(base).ok_or("the portal's URL is not http(s)")?;
        let tx = field("tx").ok_or("the card's answer names no login")?;
        let (request, challenge) = self
            .logins
            .take_challenge(tx, now)
            .ok_or("this login has expired or was already answered: open マイナポータル again")?;
        let bound = binding.is_some_and(|b| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                hex::encode(hash(b)).as_bytes(),
                request.state.as_bytes(),
            )
            .is_ok()
        });
        if !bound {
            return Err("this login was started in another browser: open マイナポータル again here".into());
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let decode = |n: &str| {
            field(n)
                .and_then(|v| b64.decode(v).ok())
                .ok_or_else(|| format!("the card agent sent no usable {n}"))
        };
        let (cert, sig) = (decode("auth_cert")?, decode("auth_sig")?);
        let login = self.api.card_login(
            &jpki_oidc::statement(&origin, &challenge),
            CardProof {
                certificate: &cert,
                signature: &sig,
            },
            None,
            self.lookups.as_ref() as &dyn PersonRefs,
            now,
        )?;
        let person = self
            .lookups
            .person_ref(&login.auth_serial)
            .ok_or("the registry does not know this card's certificate")?;
        let session = token()?;
        let csrf = token()?;
        let mut all = self.sessions.lock().map_err(|_| "the portal failed".to_owned())?;
        all.retain(|_, s| s.expires > now);
        all.insert(
            hash(&session),
            Session {
                auth_serial: login.auth_serial,
                person,
                csrf,
                expires: now + SESSION_FOR,
            },
        );
        Ok(session)
    }

    fn page(&self, session: &str, name: &str) -> Option<Result<PortalPage, String>> {
        let (serial, person, csrf) = self.with_session(session, |s| {
            (s.auth_serial.clone(), s.person.clone(), s.csrf.clone())
        })?;
        let build = || -> Result<PortalPage, String> {
            let (who, home) = self.home(&serial)?;
            let (title, sections) = match name {
                "records" => (t("利用履歴", "Access records"), self.records(&person)?),
                "consents" => (t("同意", "Consents"), self.consents(&person)?),
                "notices" => (t("お知らせ", "Notices"), self.notices(&person)?),
                "postbox" => (t("受信文書", "Post box"), self.postbox(&person)?),
                _ => (t("トップ", "Home"), home),
            };
            Ok(PortalPage {
                title,
                who,
                sections,
                csrf,
            })
        };
        Some(build())
    }

    fn act(&self, session: &str, action: &str, id: &str) -> Result<Text, String> {
        let person = self
            .with_session(session, |s| s.person.clone())
            .ok_or("your session has ended: log in again")?;
        match action {
            "revoke-consent" => {
                let mut reg = self
                    .registry
                    .lock()
                    .map_err(|_| "the registry is unavailable".to_owned())?;
                reg.revoke_consent(id, Revoker::Person(&person), OffsetDateTime::now_utc())
                    .map_err(|e| e.to_string())?;
                Ok(t("同意を撤回しました。", "The consent is withdrawn."))
            }
            other => Err(format!("unknown action {other:?}")),
        }
    }

    fn csrf(&self, session: &str) -> Option<String> {
        self.with_session(session, |s| s.csrf.clone())
    }

    fn logout(&self, session: &str) {
        if let Ok(mut all) = self.sessions.lock() {
            all.remove(&hash(session));
        }
    }

    fn secure_cookie(&self) -> bool {
        self.base.get().is_some_and(|b| b.starts_with("https://"))
    }
}

/// The platform's reference to the holder of certificate `serial`.
fn person_of(data: &std::path::Path, serial: &jpki_model::Serial) -> Result<String, crate::Failure> {
    jpki_authority::Authority::open(data)?
        .person_ref(serial.as_be_bytes())?
        .ok_or_else(|| {
            crate::Failure::Usage(format!(
                "--serial {}: no such certificate in the registry",
                serial.to_hex()
            ))
        })
}

fn input(e: jpki_platform::PlatformError) -> crate::Failure {
    match e {
        jpki_platform::PlatformError::Input(m) => crate::Failure::Usage(m),
        other => crate::Failure::Failed(other.to_string()),
    }
}

/// `jpki notice send`.
pub(crate) fn notice(
    cmd: crate::args::NoticeCmd,
    data: &std::path::Path,
) -> Result<crate::Report, crate::Failure> {
    let crate::args::NoticeCmd::Send {
        serial,
        all,
        from,
        title,
        body,
    } = cmd;
    let person = match (&serial, all) {
        (Some(s), false) => Some(person_of(data, s)?),
        _ => None,
    };
    let mut reg = crate::serve::registry(data)?;
    let id = reg
        .send_notice(person.as_deref(), &from, &title, &body, OffsetDateTime::now_utc())
        .map_err(input)?;
    crate::serve::audit(data, "notice send", &format!("{id} from {from}"))?;
    let to = if person.is_some() {
        "the holder"
    } else {
        "everyone"
    };
    Ok(crate::Report::new(
        serde_json::json!({ "notice_id": id, "to": if person.is_some() { "person" } else { "everyone" } }),
        format!("Notice {id} sent to {to}."),
    ))
}

/// `jpki postbox send`.
pub(crate) fn postbox(
    cmd: crate::args::PostboxCmd,
    data: &std::path::Path,
) -> Result<crate::Report, crate::Failure> {
    let crate::args::PostboxCmd::Send {
        serial,
        from,
        title,
        file,
    } = cmd;
    let document =
        std::fs::read(&file).map_err(|e| crate::Failure::Usage(format!("{}: {e}", file.display())))?;
    let person = person_of(data, &serial)?;
    let mut reg = crate::serve::registry(data)?;
    let id = reg
        .deliver(&person, &from, &title, &document, OffsetDateTime::now_utc())
        .map_err(input)?;
    crate::serve::audit(data, "postbox send", &format!("{id} from {from}"))?;
    Ok(crate::Report::new(
        serde_json::json!({ "document_id": id, "bytes": document.len() }),
        format!("Document {id} delivered ({} bytes).", document.len()),
    ))
}
