//! The words of the conversation pages: the contact list, a thread and its reply box,
//! search and the downloads.

/// (key, English, Russian).
pub const STRINGS: &[(&str, &str, &str)] = &[
    ("nav_contacts", "Contacts", "Контакты"),
    ("contacts_title", "Contacts", "Контакты"),
    (
        "contacts_lead",
        "Everyone who wrote, the most recent conversation first. Open one to read the whole thread and reply.",
        "Все, кто писал, сначала самые свежие разговоры. Откройте контакт, чтобы прочитать всю переписку и ответить.",
    ),
    ("no_contacts", "No contacts yet.", "Контактов пока нет."),
    ("unanswered", "Unanswered", "Без ответа"),
    ("you_wrote", "You:", "Вы:"),
    ("col_messages", "Messages", "Сообщений"),
    ("picture", "Picture", "Фото"),
    ("newest", "Newest", "Самые новые"),
    ("open_thread", "Open the conversation", "Открыть переписку"),
    ("export_label", "Download", "Скачать"),
    ("thread_pages", "Pages of the conversation", "Страницы переписки"),
    ("thread_earlier", "Earlier messages", "Более ранние сообщения"),
    ("source_webhook", "webhook", "вебхук"),
    (
        "reply_never_wrote",
        "Sending is off: this contact has not written to you, and Instagram lets a business answer only after a person's message.",
        "Отправка выключена: этот контакт вам не писал, а Instagram разрешает бизнесу отвечать только после сообщения человека.",
    ),
    (
        "reply_window_closed",
        "Sending is off: Instagram lets a business reply only within 24 hours of the person's last message, and their last one was {ago}.",
        "Отправка выключена: Instagram разрешает бизнесу отвечать только в течение 24 часов после последнего сообщения человека, а оно было {ago}.",
    ),
    (
        "reply_window_left",
        "{h} h {m} min left to reply",
        "На ответ осталось {h} ч {m} мин",
    ),
    ("nav_search", "Search", "Поиск"),
    (
        "times_local",
        "Times are in your time zone, {zone}.",
        "Время указано в вашем часовом поясе: {zone}.",
    ),
    ("search_title", "Search messages", "Поиск по сообщениям"),
    (
        "search_placeholder",
        "Words from a message, a name or a username",
        "Слова из сообщения, имя или ник",
    ),
    ("search_button", "Search", "Найти"),
    ("search_filters", "Filters", "Фильтры"),
    ("search_direction", "Direction", "Направление"),
    ("search_any", "Any", "Любое"),
    ("search_from", "From", "С"),
    ("search_to", "To", "По"),
    (
        "search_nothing",
        "Nothing found. Every word must appear; the last one may be the start of a word.",
        "Ничего не найдено. Должны встретиться все слова; последнее может быть началом слова.",
    ),
    ("search_in_thread", "Show in the conversation", "Показать в переписке"),
];
