//! The languages the page speaks: English and Russian, chosen from Accept-Language or the
//! user's own choice. Also the page's string catalogue and its human-readable dates.

use crate::time::civil_utc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Ru,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "ru" => Some(Lang::Ru),
            _ => None,
        }
    }

    /// The best of our languages for an Accept-Language header, by its q-values.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best = (Lang::En, -1.0f32);
        for item in header.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(lang) = Lang::from_code(primary) {
                if q > best.1 {
                    best = (lang, q);
                }
            }
        }
        best.0
    }

    /// Picks the text for this language; keeps the two versions side by side in the code.
    pub fn pick<'a>(self, en: &'a str, ru: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Ru => ru,
        }
    }

    /// A string of the page's catalogue. An unknown key comes back as itself, so a missing
    /// entry shows up on the page instead of failing it (a unit test keeps the table whole).
    pub fn t(self, key: &str) -> &str {
        match STRINGS.iter().find(|(k, _, _)| *k == key) {
            Some((_, en, ru)) => self.pick(en, ru),
            None => key,
        }
    }

    /// Every catalogue entry in this language, for templates (`t.key`).
    pub fn catalogue(self) -> impl Iterator<Item = (&'static str, &'static str)> {
        STRINGS
            .iter()
            .map(move |(k, en, ru)| (*k, self.pick(en, ru)))
    }

    /// "25 Nov 2026, 14:05 UTC" / "25 нояб. 2026, 14:05 UTC".
    pub fn datetime(self, ms: i64) -> String {
        let (year, month, day, hour, minute) = civil_utc(ms);
        format!(
            "{day} {} {year}, {hour:02}:{minute:02} UTC",
            self.month(month)
        )
    }

    /// "25 Nov" / "25 нояб.", for chart labels.
    pub fn day_month(self, ms: i64) -> String {
        let (_, month, day, _, _) = civil_utc(ms);
        format!("{day} {}", self.month(month))
    }

    /// How long ago, roughly: "5 min ago" / "5 мин назад". Abbreviated units keep Russian
    /// free of plural forms.
    pub fn ago(self, now_ms: i64, ms: i64) -> String {
        let minutes = now_ms.saturating_sub(ms) / 60_000;
        let (n, en, ru) = match minutes {
            ..=0 => return self.pick("just now", "только что").to_string(),
            1..=59 => (minutes, "min ago", "мин назад"),
            60..=1439 => (minutes / 60, "h ago", "ч назад"),
            _ => (minutes / 1440, "d ago", "дн. назад"),
        };
        format!("{n} {}", self.pick(en, ru))
    }

    fn month(self, month: i64) -> &'static str {
        let index = usize::try_from(month - 1).unwrap_or(0).min(11);
        match self {
            Lang::En => MONTHS_EN[index],
            Lang::Ru => MONTHS_RU[index],
        }
    }
}

const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// Genitive abbreviations, as Russian writes a day and a month ("25 нояб.").
const MONTHS_RU: [&str; 12] = [
    "янв.",
    "февр.",
    "мар.",
    "апр.",
    "мая",
    "июн.",
    "июл.",
    "авг.",
    "сент.",
    "окт.",
    "нояб.",
    "дек.",
];

/// The page's strings: (key, English, Russian).
const STRINGS: &[(&str, &str, &str)] = &[
    ("nav_dashboard", "Dashboard", "Панель"),
    ("nav_messages", "Messages", "Сообщения"),
    ("language", "Language", "Язык"),
    ("sign_out", "Sign out", "Выйти"),
    ("sign_in", "Sign in", "Войти"),
    ("login_title", "Sign in to the relay", "Вход в relay"),
    (
        "login_hint",
        "Paste the admin token. On the server, this command prints it (sudo: the database belongs to the service):",
        "Вставьте токен администратора. На сервере его выводит команда (через sudo: база принадлежит службе):",
    ),
    ("login_token", "Admin token", "Токен администратора"),
    (
        "login_wrong",
        "That token is not right. Check it and try again.",
        "Токен не подошёл. Проверьте его и попробуйте снова.",
    ),
    (
        "login_throttled",
        "Too many failed attempts. Wait a few minutes and try again.",
        "Слишком много неудачных попыток. Подождите несколько минут и попробуйте снова.",
    ),
    ("refused_title", "Request refused", "Запрос отклонён"),
    (
        "refused_csrf",
        "The form has expired or was sent from another site. Go back, reload the page and try again.",
        "Форма устарела или отправлена с другого сайта. Вернитесь, обновите страницу и попробуйте снова.",
    ),
    ("back_home", "Back to the dashboard", "Вернуться на панель"),
    (
        "unknown_action",
        "This action is not available right now.",
        "Это действие сейчас недоступно.",
    ),
    (
        "action_failed",
        "The action failed; the relay's log has the details.",
        "Действие не удалось; подробности в журнале relay.",
    ),
    ("setup_title", "Setup checklist", "Настройка"),
    (
        "setup_lead",
        "Each step turns green once it works. The checks run again every time this page loads.",
        "Каждый шаг становится зелёным, когда он работает. Проверки повторяются при каждой загрузке страницы.",
    ),
    ("status_ok", "Done", "Готово"),
    ("status_todo", "To do", "Сделать"),
    ("status_warn", "Check", "Внимание"),
    ("status_fail", "Failed", "Ошибка"),
    ("show_secret", "Show", "Показать"),
    ("click_to_select", "Click to select all", "Нажмите, чтобы выделить всё"),
    ("action_recheck_token", "Check the token again", "Проверить токен снова"),
    ("action_send_test", "Send a test webhook", "Отправить тестовый вебхук"),
    (
        "action_replay_failed",
        "Replay all failed deliveries",
        "Повторить все недоставленные",
    ),
    ("stats_title", "Statistics", "Статистика"),
    ("stat_total", "Messages, total", "Всего сообщений"),
    ("stat_today", "Today (UTC)", "Сегодня (UTC)"),
    ("stat_24h", "Last 24 hours", "За 24 часа"),
    ("stat_contacts", "Unique contacts", "Уникальных контактов"),
    ("stat_last", "Last message", "Последнее сообщение"),
    ("stat_received", "Webhooks received", "Получено вебхуков"),
    ("stat_duplicates", "Duplicates ignored", "Пропущено дубликатов"),
    ("stat_rejected", "Requests rejected", "Отклонено запросов"),
    ("never", "None yet", "Пока нет"),
    (
        "stats_note",
        "Test messages are shown in the tables but not counted.",
        "Тестовые сообщения видны в таблицах, но не учитываются в статистике.",
    ),
    ("forwarding_title", "Forwarding", "Пересылка"),
    ("fwd_pending", "Waiting", "В очереди"),
    ("fwd_delivered", "Delivered", "Доставлено"),
    ("fwd_failed", "Failed", "Не доставлено"),
    (
        "chart_title",
        "Messages per day, last 30 days (UTC)",
        "Сообщения по дням за 30 дней (UTC)",
    ),
    (
        "chart_desc",
        "{total} in 30 days; busiest day {day} with {max}.",
        "Всего за 30 дней: {total}; больше всего {day}: {max}.",
    ),
    (
        "chart_empty",
        "No messages in the last 30 days.",
        "За последние 30 дней сообщений не было.",
    ),
    ("recent_title", "Recent messages", "Последние сообщения"),
    ("all_messages", "All messages", "Все сообщения"),
    ("messages_title", "Messages", "Сообщения"),
    (
        "no_messages",
        "No messages yet. They appear here as soon as Chatrace sends the first one.",
        "Сообщений пока нет. Они появятся здесь, как только Chatrace пришлёт первое.",
    ),
    ("col_time", "Time", "Время"),
    ("col_contact", "Contact", "Контакт"),
    ("col_channel", "Channel", "Канал"),
    ("col_direction", "Direction", "Направление"),
    ("col_text", "Text", "Текст"),
    ("col_attachments", "Attachments", "Вложения"),
    ("dir_in", "Incoming", "Входящее"),
    ("dir_out", "Outgoing", "Исходящее"),
    ("test_badge", "test", "тест"),
    ("no_text", "(no text)", "(без текста)"),
    ("page_n", "Page {n}", "Страница {n}"),
    ("newer", "Newer", "Новее"),
    ("older", "Older", "Старше"),
    (
        "flagged_title",
        "Received, no message found",
        "Получено, но сообщение не найдено",
    ),
    (
        "flagged_lead",
        "Kept, but no message could be read from them. The excerpt shows what arrived, so the fields can be mapped.",
        "Запросы сохранены, но сообщение в них не найдено. По фрагменту видно, что пришло, — так можно сопоставить поля.",
    ),
    ("col_problem", "Problem", "Проблема"),
    ("col_body", "Body (excerpt)", "Тело (фрагмент)"),
    (
        "no_flagged",
        "Nothing here: every accepted request held a message.",
        "Пусто: в каждом принятом запросе было сообщение.",
    ),
    (
        "flag_unfilled_placeholders",
        "Variables not filled in",
        "Переменные не подставлены",
    ),
    ("flag_no_message", "No message in the body", "В теле нет сообщения"),
    ("fields", "Fields", "Поля"),
    ("copy", "Copy", "Копировать"),
    ("copied", "Copied", "Скопировано"),
    (
        "merged_title",
        "Repeats merged",
        "Объединённые повторы",
    ),
    (
        "merged_lead",
        "The same request (same contact, text and attachments, no message id) arrived again within the dedup window, so it was taken for the first one sent twice and not stored as a new message.",
        "Тот же запрос (тот же контакт, текст и вложения, без id сообщения) пришёл повторно в пределах окна дедупликации, поэтому считается повтором первого и не сохранён как новое сообщение.",
    ),
    ("col_merged_into", "Merged into", "Объединён с"),
    (
        "no_merged",
        "Nothing merged: no request came twice.",
        "Ничего не объединено: повторных запросов не было.",
    ),
    ("image_alt", "Photo from the message", "Фото из сообщения"),
    ("kind_image", "photo", "фото"),
    ("kind_video", "video", "видео"),
    ("kind_audio", "audio", "аудио"),
    ("kind_voice", "voice message", "голосовое сообщение"),
    ("kind_file", "file", "файл"),
    ("rejected_title", "Rejected requests", "Отклонённые запросы"),
    (
        "rejected_lead",
        "Turned away, with the reason. They usually mean Chatrace is calling but the External Request is set up wrong.",
        "Запросы, которые relay не принял, и причина. Обычно это значит, что Chatrace обращается к relay, но внешний запрос настроен неверно.",
    ),
    ("col_reason", "Reason", "Причина"),
    ("col_request", "Request", "Запрос"),
    ("no_rejected", "No rejected requests.", "Отклонённых запросов нет."),
    ("reason_missing_secret", "No secret", "Нет секрета"),
    (
        "hint_missing_secret",
        "Add the header X-Webhook-Secret to the External Request.",
        "Добавьте во внешний запрос заголовок X-Webhook-Secret.",
    ),
    ("reason_bad_secret", "Wrong secret", "Неверный секрет"),
    (
        "hint_bad_secret",
        "Copy the secret again from the checklist above.",
        "Скопируйте секрет заново из раздела настройки выше.",
    ),
    ("reason_wrong_path", "Wrong path", "Неверный путь"),
    (
        "hint_wrong_path",
        "The webhook path is {path}.",
        "Путь вебхука: {path}.",
    ),
    ("reason_malformed", "Unreadable body", "Нечитаемое тело"),
    (
        "hint_malformed",
        "The body is neither valid JSON nor form data.",
        "Тело не является ни корректным JSON, ни данными формы.",
    ),
    ("reason_too_large", "Body too large", "Слишком большое тело"),
    (
        "hint_too_large",
        "The body is larger than the relay accepts (--max-body).",
        "Тело больше, чем принимает relay (--max-body).",
    ),
    ("reason_incomplete", "Body cut short", "Тело оборвалось"),
    (
        "hint_incomplete",
        "The connection ended before the whole body arrived; nothing was stored.",
        "Соединение оборвалось раньше, чем пришло всё тело; ничего не сохранено.",
    ),
    ("reason_bad_framing", "Ambiguous framing", "Неоднозначная длина тела"),
    (
        "hint_bad_framing",
        "The request gave its body's length in a way a proxy could read differently (Content-Length with Transfer-Encoding, or a broken Content-Length); nothing was stored and the connection was closed.",
        "Длина тела в запросе указана так, что прокси мог бы понять её иначе (Content-Length вместе с Transfer-Encoding или испорченный Content-Length); ничего не сохранено, соединение закрыто.",
    ),
    ("times_utc", "Times are in UTC.", "Время указано в UTC."),
    ("failed_title", "Failed deliveries", "Недоставленные сообщения"),
    (
        "failed_lead",
        "These messages did not reach your app after every retry. Fix the endpoint, then retry one, or replay all from the checklist.",
        "Эти сообщения не дошли до вашего приложения после всех повторов. Исправьте адрес, затем повторите одно или все сразу из раздела настройки.",
    ),
    ("col_target", "Target", "Адрес"),
    ("col_message", "Message", "Сообщение"),
    ("col_attempts", "Attempts", "Попыток"),
    ("col_last_error", "Last error", "Последняя ошибка"),
    ("message_id", "Message id", "Id сообщения"),
    ("retry", "Retry", "Повторить"),
    (
        "retry_queued",
        "Delivery {id} is queued again.",
        "Доставка {id} снова в очереди.",
    ),
    (
        "retry_missing",
        "There is no such delivery.",
        "Такой доставки нет.",
    ),
    ("reply_title", "Reply", "Ответ"),
    (
        "reply_lead",
        "Sends a text to the contact on Instagram through Chatrace. Instagram accepts replies only within 24 hours of the contact's last message.",
        "Отправляет текст контакту в Instagram через Chatrace. Instagram принимает ответы только в течение 24 часов после последнего сообщения контакта.",
    ),
    (
        "reply_no_token",
        "Replies need a Chatrace API token: set CHATRACE_TOKEN and restart the relay.",
        "Для ответов нужен токен API Chatrace: задайте CHATRACE_TOKEN и перезапустите relay.",
    ),
    ("reply_choose", "Choose a contact", "Выберите контакт"),
    (
        "reply_contact_id",
        "Or type a contact id",
        "Или введите id контакта",
    ),
    ("reply_max", "At most 999 characters.", "Не больше 999 символов."),
    ("reply_send", "Send", "Отправить"),
    ("reply_sent", "Sent.", "Отправлено."),
    ("reply_failed", "Not sent:", "Не отправлено:"),
    (
        "reply_no_contact",
        "Choose a contact or type a contact id.",
        "Выберите контакт или введите его id.",
    ),
];

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn accept_language_prefers_the_highest_q_we_speak() {
        assert_eq!(
            Lang::from_accept_language("ru-RU,ru;q=0.9,en;q=0.8"),
            Lang::Ru
        );
        assert_eq!(
            Lang::from_accept_language("en-US,en;q=0.9,ru;q=0.8"),
            Lang::En
        );
        assert_eq!(Lang::from_accept_language("de-DE,ru;q=0.5"), Lang::Ru);
        assert_eq!(Lang::from_accept_language("de-DE"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
    }

    #[test]
    fn catalogue_has_unique_keys_and_both_languages() {
        let mut keys = std::collections::HashSet::new();
        for (key, en, ru) in super::STRINGS {
            assert!(keys.insert(key), "duplicate key {key}");
            assert!(
                !en.is_empty() && !ru.is_empty(),
                "{key} lacks a translation"
            );
        }
        assert_eq!(Lang::Ru.t("sign_in"), "Войти");
        assert_eq!(Lang::En.t("no-such-key"), "no-such-key");
    }

    #[test]
    fn dates_read_naturally_in_both_languages() {
        let ms = 1_795_615_500_000; // 2026-11-25T14:05:00Z
        assert_eq!(Lang::En.datetime(ms), "25 Nov 2026, 14:05 UTC");
        assert_eq!(Lang::Ru.datetime(ms), "25 нояб. 2026, 14:05 UTC");
        assert_eq!(Lang::Ru.day_month(ms), "25 нояб.");
        assert_eq!(Lang::En.ago(ms + 5 * 60_000, ms), "5 min ago");
        assert_eq!(Lang::Ru.ago(ms + 5 * 60_000, ms), "5 мин назад");
        assert_eq!(Lang::En.ago(ms + 3 * 3_600_000, ms), "3 h ago");
        assert_eq!(Lang::Ru.ago(ms + 2 * 86_400_000, ms), "2 дн. назад");
        assert_eq!(Lang::En.ago(ms - 1000, ms), "just now");
    }
}
