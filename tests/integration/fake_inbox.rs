//! Chatrace's inbox API (`POST /php/user`) as the fake server plays it: a model of
//! conversations that tests change while the relay runs, answered in the real shapes (every
//! value a string, `message` a JSON array inside a string), with login, tokens, injected
//! faults, and the record of requests that tests read to check the relay's pace and headers.

use std::cmp::Reverse;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::fake::{Action, Fake, Recorded};
use crate::util::{send_raw, Relay, Reply, ADMIN, SECRET};

/// The one-time code every email login accepts unless a test sets another.
pub const DEFAULT_CODE: &str = "456788";
/// The signed-in team member, and the one account (page) they manage unless set otherwise.
pub const ME_ID: &str = "1987654321012345";
pub const PAGE_ID: &str = "1145545";

/// How the fake answers whatever its model holds: faults for the relay to survive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Normal,
    /// 200 with no body, only after this long.
    Hang(Duration),
    /// A web page with status 200, as a wrong address or a maintenance page gives.
    Html,
    /// The body `null`.
    Null,
    /// Digit strings in listed conversations and messages come as JSON numbers.
    Numbers,
    /// Each `message` is a string that is not JSON.
    MessageNotJson,
    /// Messages come without `message`.
    MessageMissing,
}

/// Which operation a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    SendOtp,
    ValidateOtp,
    Me,
    Conversations,
    Messages,
    Unknown,
}

impl Op {
    pub fn of(request: &Recorded) -> Op {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
        match (field("op"), field("op1"), field("op2")) {
            ("login", "email", "sendOTP") => Op::SendOtp,
            ("login", "email", "validateOTP") => Op::ValidateOtp,
            ("admins", "get", _) if body["me"] == true => Op::Me,
            ("conversations", "get", _) if !body["id"].is_null() => Op::Messages,
            ("conversations", "get", _) => Op::Conversations,
            _ => Op::Unknown,
        }
    }
}

/// `element` is the message's one element of the `message` array, without `channel` and
/// `dir`: those come from the conversation and `incoming` when answering.
struct Message {
    id: String,
    incoming: bool,
    ts_ms: u64,
    element: Value,
}

struct Conversation {
    ms_id: String,
    full_name: String,
    channel: String,
    profile_pic: String,
    live_chat: bool,
    messages: Vec<Message>,
}

struct Model {
    conversations: Vec<Conversation>,
    code: String,
    /// The `expire` (unix seconds) of tokens that later logins issue.
    expire: u64,
    /// The tokens the fake accepts, each with its expiry in unix seconds.
    tokens: Vec<(String, u64)>,
    rids: Vec<String>,
    emails: Vec<String>,
    pages: Vec<(String, String)>,
    mode: Mode,
    /// Requests still to be refused with 429, and the `Retry-After` they carry.
    limited: (u32, u64),
    /// Numbers message ids, request ids and token signatures, so each is unique.
    counter: u64,
}

pub struct FakeInbox {
    fake: Fake,
    model: Arc<Mutex<Model>>,
    token: String,
}

/// Changes one conversation, created by `FakeInbox::conversation`; each call changes the
/// live model at once.
pub struct ConversationBuilder<'a> {
    inbox: &'a FakeInbox,
    ms_id: String,
}

pub fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
    since_epoch.unwrap().as_millis() as u64
}

/// A relay that reads `inbox` as its Chatrace inbox with its valid token; `extra_env`
/// comes last and overrides.
pub fn relay_with_inbox(name: &str, inbox: &FakeInbox, extra_env: &[(&str, &str)]) -> Relay {
    let (url, token) = (inbox.url(), inbox.valid_token());
    let mut env = vec![
        ("CHATRACE_RELAY_WEBHOOK_SECRET", SECRET),
        ("CHATRACE_RELAY_ADMIN_TOKEN", ADMIN),
        ("CHATRACE_INBOX_URL", url.as_str()),
        ("CHATRACE_INBOX_TOKEN", token.as_str()),
    ];
    for &(key, value) in extra_env {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    }
    Relay::start_with(name, &[], &env)
}

impl FakeInbox {
    /// No conversations, one page ("1145545" "Aurora Shop"), one token valid for a year.
    pub fn start() -> FakeInbox {
        let expire = now_ms() / 1000 + 365 * 24 * 3600;
        let mut model = Model {
            conversations: Vec::new(),
            code: DEFAULT_CODE.to_string(),
            expire,
            tokens: Vec::new(),
            rids: Vec::new(),
            emails: Vec::new(),
            pages: vec![(PAGE_ID.to_string(), "Aurora Shop".to_string())],
            mode: Mode::Normal,
            limited: (0, 0),
            counter: 0,
        };
        let token = model.issue(expire);
        let model = Arc::new(Mutex::new(model));
        let shared = Arc::clone(&model);
        let fake = Fake::start(move |request| respond(&mut lock(&shared), request));
        FakeInbox { fake, model, token }
    }

    /// `http://127.0.0.1:PORT/php/user`, the one endpoint.
    pub fn url(&self) -> String {
        self.fake.url("/php/user")
    }

    pub fn valid_token(&self) -> String {
        self.token.clone()
    }

    /// The conversation with contact `ms_id` (an Instagram one unless `channel` says),
    /// created if new, renamed if not.
    pub fn conversation(&self, ms_id: &str, full_name: &str) -> ConversationBuilder<'_> {
        let mut model = lock(&self.model);
        match model.conversations.iter_mut().find(|c| c.ms_id == ms_id) {
            Some(c) => c.full_name = full_name.to_string(),
            None => model.conversations.push(Conversation {
                ms_id: ms_id.to_string(),
                full_name: full_name.to_string(),
                channel: "10".to_string(),
                profile_pic: String::new(),
                live_chat: false,
                messages: Vec::new(),
            }),
        }
        let ms_id = ms_id.to_string();
        ConversationBuilder { inbox: self, ms_id }
    }

    /// The ids of one conversation's messages, in the order the test added them.
    pub fn message_ids(&self, ms_id: &str) -> Vec<String> {
        let model = lock(&self.model);
        let found = model.conversations.iter().find(|c| c.ms_id == ms_id);
        let ids = found.into_iter().flat_map(|c| &c.messages);
        ids.map(|m| m.id.clone()).collect()
    }

    pub fn set_code(&self, code: &str) {
        lock(&self.model).code = code.to_string();
    }

    /// The `expire` (unix seconds) that tokens from later logins carry and are held to.
    pub fn set_expire(&self, unix_secs: u64) {
        lock(&self.model).expire = unix_secs;
    }

    /// A new token the fake accepts until `unix_secs` (already past: an expired one).
    pub fn token_expiring_at(&self, unix_secs: u64) -> String {
        lock(&self.model).issue(unix_secs)
    }

    /// From now on `token` gets `{"status":"ERROR","code":1}`.
    pub fn revoke(&self, token: &str) {
        lock(&self.model).tokens.retain(|(t, _)| t != token);
    }

    /// The emails that asked for a one-time code, in order.
    pub fn emails(&self) -> Vec<String> {
        lock(&self.model).emails.clone()
    }

    /// The accounts in `my_pages` as (page id, name); the first is `curPage`. Only these
    /// pages list the conversations.
    pub fn set_pages(&self, pages: &[(&str, &str)]) {
        let pages = pages.iter().map(|&(id, name)| (id.into(), name.into()));
        lock(&self.model).pages = pages.collect();
    }

    pub fn set_mode(&self, mode: Mode) {
        lock(&self.model).mode = mode;
    }

    /// The next `n` requests get 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, n: u32, retry_after_secs: u64) {
        lock(&self.model).limited = (n, retry_after_secs);
    }

    /// Every request so far, 429s included, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.fake.requests()
    }

    /// Waits until at least `n` requests arrived; panics after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        self.fake.wait_for(n, timeout)
    }

    pub fn count_all(&self) -> usize {
        self.requests().len()
    }

    pub fn count(&self, op: Op) -> usize {
        self.requests().iter().filter(|r| Op::of(r) == op).count()
    }

    pub fn arrivals(&self) -> Vec<Instant> {
        self.requests().iter().map(|r| r.at).collect()
    }

    /// The most requests that arrived within any 60 seconds.
    pub fn max_in_any_minute(&self) -> usize {
        let at = self.arrivals();
        let mut first = 0;
        (0..at.len())
            .map(|last| {
                while at[last].duration_since(at[first]) >= Duration::from_secs(60) {
                    first += 1;
                }
                last + 1 - first
            })
            .max()
            .unwrap_or(0)
    }

    /// The shortest time between two consecutive requests; None before the second.
    pub fn min_gap(&self) -> Option<Duration> {
        let at = self.arrivals();
        at.windows(2).map(|w| w[1].duration_since(w[0])).min()
    }
}

impl ConversationBuilder<'_> {
    fn change(self, f: impl FnOnce(&mut Conversation, String)) -> Self {
        let mut model = lock(&self.inbox.model);
        model.counter += 1;
        let id = format!("100004588123900173645{:023}", model.counter);
        let ms_id = &self.ms_id;
        let found = model.conversations.iter_mut().find(|c| c.ms_id == *ms_id);
        f(found.expect("made by FakeInbox::conversation"), id);
        drop(model);
        self
    }

    fn add(self, incoming: bool, ts_ms: u64, element: Value) -> Self {
        let message = |id| Message {
            id,
            incoming,
            ts_ms,
            element,
        };
        self.change(|c, id| c.messages.push(message(id)))
    }

    /// Chatrace's channel code: "10" Instagram (the default), "0" Messenger, "9" webchat...
    pub fn channel(self, channel: &str) -> Self {
        self.change(|c, _| c.channel = channel.to_string())
    }

    pub fn profile_pic(self, url: &str) -> Self {
        self.change(|c, _| c.profile_pic = url.to_string())
    }

    /// Whether a person has the conversation (flows paused).
    pub fn live_chat(self, on: bool) -> Self {
        self.change(|c, _| c.live_chat = on)
    }

    pub fn message_in(self, text: &str, ts_ms: u64) -> Self {
        self.add(true, ts_ms, json!({"text": text}))
    }

    /// `kind` is the attachment type: "image", "video", "audio", "file".
    pub fn attachment_in(self, kind: &str, url: &str, ts_ms: u64) -> Self {
        let attachment = json!({"type": kind, "payload": {"url": url}});
        self.add(true, ts_ms, json!({"attachment": attachment}))
    }

    /// Sent by team member `from`, or from Facebook's inbox (-1) or Instagram's app (-2).
    pub fn message_out_agent(self, text: &str, ts_ms: u64, from: i64) -> Self {
        self.add(false, ts_ms, json!({"text": text, "from": from}))
    }

    /// Sent by a flow: no `from`.
    pub fn message_out_bot(self, text: &str, ts_ms: u64) -> Self {
        self.add(false, ts_ms, json!({"text": text}))
    }

    /// A typing indicator: listed among the messages, though not one.
    pub fn typing(self, ts_ms: u64) -> Self {
        self.add(false, ts_ms, json!({"type": "typing", "delay": 0}))
    }
}

fn lock(model: &Mutex<Model>) -> MutexGuard<'_, Model> {
    // A test that panicked holding the model must not silence the fake for the rest.
    model.lock().unwrap_or_else(PoisonError::into_inner)
}

fn hash(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url, as JWTs use.
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let bits = (chunk.iter().enumerate()).fold(0, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        out.extend(
            (0..=chunk.len()).map(|i| BASE64URL[(bits >> (18 - 6 * i) & 63) as usize] as char),
        );
    }
    out
}

/// A string field that may have come as a number.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// The page of `list` that `offset` and `limit` in the request ask for.
fn window<T>(list: Vec<T>, body: &Value, default_limit: usize) -> impl Iterator<Item = T> {
    let offset = text(&body["offset"]).parse().unwrap_or(0);
    let limit = text(&body["limit"]).parse().unwrap_or(default_limit);
    list.into_iter().skip(offset).take(limit)
}

impl Model {
    /// A JWT-shaped token for the team member, accepted until `expire`.
    fn issue(&mut self, expire: u64) -> String {
        self.counter += 1;
        let payload = json!({"user": ME_ID, "expire": expire, "provider": "email"}).to_string();
        let token = format!(
            "{}.{}.{}",
            base64url(br#"{"typ":"JWT","alg":"HS256"}"#),
            base64url(payload.as_bytes()),
            base64url(format!("signature-{}", self.counter).as_bytes())
        );
        self.tokens.push((token.clone(), expire));
        token
    }

    fn login(&mut self, op: Op, body: &Value) -> Value {
        if op == Op::SendOtp {
            self.counter += 1;
            let email = text(&body["data"]["email"]);
            let rid = (0..4).map(|i| format!("{:016x}", hash((&email, self.counter, i))));
            self.rids.push(rid.collect());
            self.emails.push(email);
            return json!({"status": "OK", "rid": self.rids.last()});
        }
        if self.rids.contains(&text(&body["rid"])) && text(&body["data"]["code"]) == self.code {
            json!({"status": "OK", "data": {"token": self.issue(self.expire)}})
        } else {
            json!({"status": "ERROR", "message": "Wrong code"})
        }
    }

    fn me(&self) -> Value {
        let page = |(id, name): &(String, String)| json!({"page_id": id, "name": name});
        let pages: Vec<Value> = self.pages.iter().map(page).collect();
        let current = self.pages.first().map_or("", |(id, _)| id.as_str());
        let me = json!({"fb_id": ME_ID, "name": "Ирина Смирнова"});
        json!({"status": "OK", "me": me, "my_pages": pages, "curPage": current})
    }

    fn conversations(&self, body: &Value) -> Value {
        let page = text(&body["account_id"]);
        let known = self.pages.iter().any(|(id, _)| *id == page);
        let mut list: Vec<&Conversation> = self.conversations.iter().filter(|_| known).collect();
        list.sort_by_key(|c| Reverse(c.newest()));
        let data: Vec<Value> = window(list, body, 30).map(Conversation::answer).collect();
        json!({"status": "OK", "data": data})
    }

    fn messages(&self, body: &Value) -> Value {
        let id = text(&body["id"]);
        let found = self.conversations.iter().find(|c| c.ms_id == id);
        let mut list: Vec<&Message> = found.iter().flat_map(|c| &c.messages).collect();
        list.reverse();
        // A stable sort: of two at the same time, the one added later comes first.
        list.sort_by_key(|m| Reverse(m.ts_ms));
        let ids: Vec<&String> = list.iter().map(|m| &m.id).collect();
        let hash = format!("{:016x}", hash(ids));
        let channel = found.map_or("0", |c| c.channel.as_str());
        let data: Vec<Value> = window(list, body, 20).map(|m| m.answer(channel)).collect();
        json!({"status": "OK", "hash": hash, "data": data})
    }
}

impl Conversation {
    fn newest(&self) -> u64 {
        self.messages.iter().map(|m| m.ts_ms).max().unwrap_or(0)
    }

    fn answer(&self) -> Value {
        let newest = self.newest();
        let all = || self.messages.iter();
        let shown = || all().filter(|m| m.element["type"] != "typing");
        let last = shown().max_by_key(|m| m.ts_ms).map(|m| &m.element);
        let last_msg = last.map_or(String::new(), |e| {
            text(e.pointer("/attachment/payload/url").unwrap_or(&e["text"]))
        });
        let sent = shown().filter(|m| !m.incoming);
        let last_sent = sent.map(|m| m.ts_ms).max().unwrap_or(0);
        json!({
            "ms_id": self.ms_id, "full_name": self.full_name, "channel": self.channel,
            "last_msg": last_msg, "profile_pic": self.profile_pic, "phone": "",
            "timestamp": newest.to_string(), "live_chat": if self.live_chat { "1" } else { "0" },
            "followup": "0", "archived": "0", "blocked": "0", "last_read_page": "0",
            "assigned_to": "0", "last_active": (newest / 1000).to_string(), "custom0": "",
            "t_last_sent": last_sent.to_string(), "t_last_delived": "0",
            "t_last_seen": newest.to_string(),
        })
    }
}

impl Message {
    fn answer(&self, channel: &str) -> Value {
        let (dir, mut element) = (u8::from(self.incoming), self.element.clone());
        if element["type"] != "typing" {
            element["channel"] = json!(channel.parse::<i64>().unwrap_or(0));
            element["dir"] = json!(dir);
        }
        json!({
            "id": self.id, "channel": channel, "dir": dir.to_string(),
            "sentBy": if element.get("from").is_some() { "1" } else { "0" },
            "message": json!([element]).to_string(), "timestamp": self.ts_ms.to_string(),
        })
    }
}

fn respond(model: &mut Model, request: &Recorded) -> Action {
    if model.limited.0 > 0 {
        model.limited.0 -= 1;
        let body = r#"{"status":"ERROR","message":"Too many requests"}"#;
        return Action::json(429, body).with_header("Retry-After", &model.limited.1.to_string());
    }
    let html = "<!DOCTYPE html><html><body><h1>Maintenance</h1></body></html>";
    match model.mode {
        Mode::Hang(time) => return Action::Hang(time),
        Mode::Null => return Action::json(200, "null"),
        Mode::Html => {
            let (status, body) = (200, html.to_string());
            let headers = vec![("Content-Type".into(), "text/html".into())];
            return Action::Respond {
                status,
                headers,
                body,
            };
        }
        _ => {}
    }
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let token = request.header("X-ACCESS-TOKEN").unwrap_or("");
    let now = now_ms() / 1000;
    let signed_in = model
        .tokens
        .iter()
        .any(|(t, expire)| t == token && *expire > now);
    let mut answer = match Op::of(request) {
        op @ (Op::SendOtp | Op::ValidateOtp) => model.login(op, &body),
        _ if !signed_in => json!({"status": "ERROR", "code": 1}),
        Op::Me => model.me(),
        Op::Conversations => model.conversations(&body),
        Op::Messages => model.messages(&body),
        Op::Unknown => Value::Null,
    };
    let number = |v: &Value| Some(Value::Number(v.as_str()?.parse().ok()?));
    // `get_mut`, not indexing: indexing would turn a `null` answer into an object.
    let data = answer.get_mut("data").and_then(Value::as_array_mut);
    for item in data.into_iter().flatten().filter_map(Value::as_object_mut) {
        match model.mode {
            Mode::Numbers => {
                for value in item.values_mut() {
                    if let Some(n) = number(value) {
                        *value = n;
                    }
                }
            }
            Mode::MessageNotJson if item.contains_key("message") => {
                item.insert("message".into(), json!(r#"[{"text":"Hel"#));
            }
            Mode::MessageMissing => drop(item.remove("message")),
            _ => {}
        }
    }
    Action::json(200, &answer.to_string())
}

// The fake's own checks, over raw TCP: no relay needed.

fn call(inbox: &FakeInbox, token: Option<&str>, body: Value) -> Reply {
    let url = inbox.url();
    let addr = url.trim_start_matches("http://");
    let addr = addr.trim_end_matches("/php/user");
    let auth = token.map_or(String::new(), |t| format!("X-ACCESS-TOKEN: {t}\r\n"));
    let (body, close) = (body.to_string(), "Connection: close");
    let head = format!("Host: {addr}\r\nUser-Agent: mobile-app\r\nContent-Type: application/json");
    let length = format!("Content-Length: {}", body.len());
    let request =
        format!("POST /php/user HTTP/1.1\r\n{head}\r\n{auth}{length}\r\n{close}\r\n\r\n{body}");
    send_raw(addr, request.as_bytes())
}

fn ask(inbox: &FakeInbox, body: Value) -> Value {
    call(inbox, Some(&inbox.valid_token()), body).json()
}

/// The conversations of the page, or with `ms_id` the messages of one.
fn list(ms_id: Option<&str>, offset: usize, limit: usize) -> Value {
    let mut body = json!({"op": "conversations", "op1": "get", "account_id": PAGE_ID, "cdts": []});
    (body["id"], body["offset"], body["limit"]) = (json!(ms_id), json!(offset), json!(limit));
    body
}

fn me() -> Value {
    json!({"op": "admins", "op1": "get", "account_id": null, "me": true})
}

fn login(op2: &str, rid: &str, data: Value) -> Value {
    json!({"op": "login", "op1": "email", "op2": op2, "rid": rid, "data": data})
}

fn all_strings(rows: &Value) -> bool {
    let mut values = rows
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_object().unwrap());
    values.all(|(_, v)| v.is_string())
}

fn jwt_payload(token: &str) -> Value {
    let (mut bits, mut held, mut bytes) = (0u32, 0, Vec::new());
    for c in token.split('.').nth(1).unwrap().bytes() {
        bits = bits << 6 | BASE64URL.iter().position(|&b| b == c).unwrap() as u32;
        held += 6;
        if held >= 8 {
            held -= 8;
            bytes.push((bits >> held) as u8);
        }
    }
    serde_json::from_slice(&bytes).unwrap()
}

const MARIA: &str = "5718243390127745";

#[test]
fn fake_inbox_answers_in_chatrace_shapes() {
    let (inbox, t) = (FakeInbox::start(), 1_796_169_600_123);
    let guest = inbox.conversation("6011829374650021", "Guest 44871");
    guest.channel("9").message_in("+", t - 9000);
    let (agent, pic) = (ME_ID.parse().unwrap(), "https://cdn.example/5718.jpg");
    let maria = inbox.conversation(MARIA, "Мария Иванова").live_chat(true);
    (maria.profile_pic(pic).message_in("Здравствуйте!", t))
        .message_out_bot("Спасибо", t + 1)
        .message_out_agent("From the Instagram app", t + 2, -2)
        .message_out_agent("Да, доставляем.", t + 60_333, agent)
        .typing(t + 60_877)
        .attachment_in("image", "https://cdn.example/a.jpg", t + 120_666);

    let answer = ask(&inbox, list(None, 0, 30));
    assert!(all_strings(&answer["data"]), "{answer}");
    let (maria, guest) = (&answer["data"][0], &answer["data"][1]);
    assert_eq!(maria["ms_id"], MARIA, "most recently active first");
    assert_eq!(maria["timestamp"], (t + 120_666).to_string());
    assert_eq!(maria["t_last_sent"], (t + 60_333).to_string());
    assert_eq!(maria["last_active"], ((t + 120_666) / 1000).to_string());
    assert_eq!(maria["last_msg"], "https://cdn.example/a.jpg");
    assert_eq!([&maria["live_chat"], &maria["channel"]], ["1", "10"]);
    assert_eq!([&guest["live_chat"], &guest["channel"]], ["0", "9"]);

    let answer = ask(&inbox, list(Some(MARIA), 0, 20));
    assert!(answer["hash"].is_string() && all_strings(&answer["data"]));
    let rows = answer["data"].as_array().unwrap();
    let inner = rows.iter().map(|r| r["message"].as_str().unwrap());
    let inner: Vec<Value> = inner.map(|m| serde_json::from_str(m).unwrap()).collect();
    let image = json!({"type": "image", "payload": {"url": "https://cdn.example/a.jpg"}});
    let expected = [
        json!([{"attachment": image, "channel": 10, "dir": 1}]),
        json!([{"type": "typing", "delay": 0}]),
        json!([{"text": "Да, доставляем.", "channel": 10, "dir": 0, "from": agent}]),
        json!([{"text": "From the Instagram app", "channel": 10, "dir": 0, "from": -2}]),
        json!([{"text": "Спасибо", "channel": 10, "dir": 0}]),
        json!([{"text": "Здравствуйте!", "channel": 10, "dir": 1}]),
    ];
    assert_eq!(inner, expected);
    let field = |k: &str| rows.iter().map(|r| r[k].clone()).collect::<Vec<_>>();
    assert_eq!(field("dir"), ["1", "0", "0", "0", "0", "1"]);
    assert_eq!(field("sentBy"), ["0", "0", "1", "1", "0", "0"]);
    assert_eq!(field("timestamp")[0], (t + 120_666).to_string());
}

#[test]
fn fake_inbox_logs_in_by_email_and_refuses_other_tokens() {
    let inbox = FakeInbox::start();
    assert_eq!(jwt_payload(&inbox.valid_token())["provider"], "email");
    inbox.set_expire(1_827_741_600);
    let email = json!({"email": "irina@shop.example"});
    let sent = call(&inbox, None, login("sendOTP", "", email)).json();
    let rid = sent["rid"].as_str().unwrap();
    assert!(rid.len() == 64 && rid.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(inbox.emails(), ["irina@shop.example"]);
    let validate = |rid, code| {
        let body = login("validateOTP", rid, json!({"code": code}));
        call(&inbox, None, body).json()
    };
    let wrong = json!({"status": "ERROR", "message": "Wrong code"});
    assert_eq!(validate("0abc", DEFAULT_CODE), wrong);
    inbox.set_code("123456");
    assert_eq!(validate(rid, DEFAULT_CODE), wrong);
    let token = validate(rid, "123456")["data"]["token"].clone();
    let token = token.as_str().unwrap();
    let payload = json!({"user": ME_ID, "expire": 1_827_741_600, "provider": "email"});
    assert_eq!(jwt_payload(token), payload);
    let answer = call(&inbox, Some(token), me()).json();
    assert_eq!(
        [&answer["me"]["fb_id"], &answer["curPage"]],
        [ME_ID, PAGE_ID]
    );
    let pages = json!([{"page_id": PAGE_ID, "name": "Aurora Shop"}]);
    assert_eq!(answer["my_pages"], pages);

    let soon = inbox.token_expiring_at(now_ms() / 1000 + 3600);
    let past = inbox.token_expiring_at(now_ms() / 1000 - 1);
    assert_eq!(call(&inbox, Some(&soon), me()).json()["status"], "OK");
    inbox.revoke(&soon);
    let signed_out = json!({"status": "ERROR", "code": 1});
    for token in [None, Some("wrong"), Some(&soon), Some(&past)] {
        let reply = call(&inbox, token, list(None, 0, 30));
        assert_eq!((reply.status, reply.json()), (200, signed_out.clone()));
    }
    let unknown = call(&inbox, Some(token), json!({"op": "nothing"}));
    assert_eq!((unknown.status, unknown.text()), (200, "null".into()));
    assert_eq!(inbox.count(Op::Unknown), 1);
    assert_eq!(inbox.count(Op::ValidateOtp), 3);
}

#[test]
fn fake_inbox_pages_by_offset_and_ends_with_empty_data() {
    let inbox = FakeInbox::start();
    let mut maria = inbox.conversation(MARIA, "Мария Иванова");
    for i in 0..45 {
        maria = maria.message_in(&format!("m{i}"), 1_796_169_600_000 + i * 1000);
    }
    let mut seen = Vec::new();
    for (offset, expected) in [(0, 20), (20, 20), (40, 5), (60, 0)] {
        let answer = ask(&inbox, list(Some(MARIA), offset, 20));
        let rows = answer["data"].as_array().unwrap();
        assert_eq!(rows.len(), expected, "offset {offset}");
        seen.extend(rows.iter().map(|r| r["id"].as_str().unwrap().to_string()));
    }
    seen.reverse();
    assert_eq!(seen, inbox.message_ids(MARIA), "newest first, each once");
    assert_eq!(ask(&inbox, list(Some("404"), 0, 20))["data"], json!([]));

    let guest = inbox.conversation("6011829374650021", "Guest 44871");
    guest.message_in("+", 1_796_100_000_000);
    let second = ask(&inbox, list(None, 1, 1));
    assert_eq!(second["data"][0]["ms_id"], "6011829374650021");
    assert_eq!(ask(&inbox, list(None, 2, 1))["data"], json!([]));
    inbox.set_pages(&[("2233", "Other Shop")]);
    assert_eq!(ask(&inbox, me())["curPage"], "2233");
    let other = ask(&inbox, list(None, 0, 30));
    assert_eq!(other["data"], json!([]), "not a page of this login");
}

#[test]
fn fake_inbox_rate_limits_on_demand_and_records_the_pace() {
    let inbox = FakeInbox::start();
    inbox.rate_limit_next(2, 7);
    let token = inbox.valid_token();
    let replies: Vec<Reply> = (0..3).map(|_| call(&inbox, Some(&token), me())).collect();
    for limited in &replies[..2] {
        assert_eq!(limited.status, 429);
        assert_eq!(limited.header("Retry-After"), Some("7"));
    }
    assert_eq!(replies[2].json()["status"], "OK");
    let requests = inbox.wait_for(3, Duration::from_secs(5));
    assert_eq!(requests[0].header("User-Agent"), Some("mobile-app"));
    assert_eq!(requests[0].header("Content-Type"), Some("application/json"));
    assert_eq!(requests[2].header("X-ACCESS-TOKEN"), Some(token.as_str()));
    assert_eq!([inbox.count_all(), inbox.count(Op::Me)], [3, 3]);
    assert_eq!(inbox.count(Op::Messages), 0);
    assert_eq!([inbox.arrivals().len(), inbox.max_in_any_minute()], [3, 3]);
    assert!(inbox.min_gap().unwrap() < Duration::from_secs(5));
}

#[test]
fn fake_inbox_modes_give_odd_answers() {
    let inbox = FakeInbox::start();
    let maria = inbox.conversation(MARIA, "Мария Иванова");
    maria.message_in("Hello", 1_796_169_600_123);
    let first_row = |mode| {
        inbox.set_mode(mode);
        ask(&inbox, list(Some(MARIA), 0, 20))["data"][0].clone()
    };
    let row = first_row(Mode::Numbers);
    assert!(row["timestamp"].is_number() && row["id"].is_number());
    assert!(row["message"].is_string());
    assert!(ask(&inbox, list(None, 0, 30))["data"][0]["ms_id"].is_number());
    let row = first_row(Mode::MessageNotJson);
    assert!(serde_json::from_str::<Value>(row["message"].as_str().unwrap()).is_err());
    assert!(first_row(Mode::MessageMissing).get("message").is_none());
    assert!(first_row(Mode::Normal)["message"].is_string());

    let reply = |mode| {
        inbox.set_mode(mode);
        call(&inbox, Some(&inbox.valid_token()), me())
    };
    assert_eq!(reply(Mode::Null).text(), "null");
    let html = reply(Mode::Html);
    assert_eq!(html.header("Content-Type"), Some("text/html"));
    assert_eq!(html.status, 200);
    let start = Instant::now();
    assert_eq!(reply(Mode::Hang(Duration::from_millis(300))).text(), "");
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn relay_with_inbox_passes_the_inbox_settings() {
    let inbox = FakeInbox::start();
    let other = inbox.token_expiring_at(now_ms() / 1000 + 3600);
    let extra = [("CHATRACE_INBOX_TOKEN", other.as_str())];
    let mut relay = relay_with_inbox("fake-inbox-env", &inbox, &extra);
    assert!(relay.try_wait().is_none(), "{}", relay.log());
    let environ = std::fs::read(format!("/proc/{}/environ", relay.pid())).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    let vars: Vec<&str> = environ.split('\0').collect();
    let expected = [
        format!("CHATRACE_RELAY_WEBHOOK_SECRET={SECRET}"),
        format!("CHATRACE_RELAY_ADMIN_TOKEN={ADMIN}"),
        format!("CHATRACE_INBOX_URL={}", inbox.url()),
        format!("CHATRACE_INBOX_TOKEN={other}"),
    ];
    assert!(
        expected.iter().all(|e| vars.contains(&e.as_str())),
        "{vars:?}"
    );
    let tokens = vars
        .iter()
        .filter(|v| v.starts_with("CHATRACE_INBOX_TOKEN="));
    assert_eq!(tokens.count(), 1);
}
