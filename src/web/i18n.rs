//! The pages' two languages, English and Simplified Chinese (the hub's audience), chosen
//! from `Accept-Language`; every visible string is a [`Text`] key with both translations.

use axum::http::{HeaderMap, header};

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhHans,
}

impl Lang {
    /// The `lang` attribute of the page.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhHans => "zh-Hans",
        }
    }

    /// The preferred of our languages in `Accept-Language` (by q-value, then order);
    /// English when none matches.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        let Some(value) = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::En;
        };
        let mut best: Option<(f32, Lang)> = None;
        for part in value.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = if tag == "zh" || tag.starts_with("zh-") {
                // Traditional script variants are not served; Simplified is the closer.
                Some(Lang::ZhHans)
            } else if tag == "en" || tag.starts_with("en-") {
                Some(Lang::En)
            } else {
                None
            };
            if let Some(lang) = lang
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }

    /// `text` in this language.
    pub fn t(self, text: Text) -> &'static str {
        let (en, zh) = text.pair();
        match self {
            Lang::En => en,
            Lang::ZhHans => zh,
        }
    }
}

macro_rules! texts {
    ($($key:ident => $en:literal, $zh:literal;)*) => {
        /// Every string the pages show.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Text { $($key,)* }

        impl Text {
            /// Every key, for the completeness test.
            #[cfg(test)]
            pub const ALL: &'static [Text] = &[$(Text::$key,)*];

            fn pair(self) -> (&'static str, &'static str) {
                match self { $(Text::$key => ($en, $zh),)* }
            }
        }
    };
}

texts! {
    AdminTitle => "Rookery operator dashboard", "Rookery 运营面板";
    SignInTitle => "Operator sign-in", "运营者登录";
    AdminPassword => "Admin password", "管理员密码";
    SignIn => "Sign in", "登录";
    SignOut => "Sign out", "退出登录";
    WrongPassword => "Wrong password.", "密码错误。";
    FormExpired => "The form expired or came from another site. Please try again.", "表单已过期或来自其他网站，请重试。";
    Accounts => "Accounts", "账户";
    Invites => "Invite codes", "邀请码";
    Search => "Search", "搜索";
    SearchHint => "Handle, email or DID", "用户名、邮箱或 DID";
    NoAccounts => "No accounts found.", "未找到账户。";
    Handle => "Handle", "用户名";
    Email => "Email", "邮箱";
    Status => "Status", "状态";
    Created => "Created", "创建时间";
    Active => "active", "正常";
    Deactivated => "deactivated", "已停用";
    TakenDown => "taken down", "已下架";
    NextPage => "Next page", "下一页";
    Repository => "Repository", "数据仓库";
    Revision => "Revision", "版本";
    Records => "Records", "记录数";
    Blocks => "Blocks", "数据块";
    Blobs => "Blobs (here / referenced)", "文件（已存 / 已引用）";
    Actions => "Actions", "操作";
    TakeDown => "Take down", "下架";
    Restore => "Restore", "恢复";
    Deactivate => "Deactivate", "停用";
    Activate => "Reactivate", "重新启用";
    NewPassword => "New password", "新密码";
    SetPassword => "Set password", "设置密码";
    NewHandle => "New handle", "新用户名";
    ChangeHandle => "Change handle", "修改用户名";
    NewEmail => "New email", "新邮箱";
    ChangeEmail => "Change email", "修改邮箱";
    DeleteAccount => "Delete account", "删除账户";
    DeleteConfirmHint => "Type the handle to confirm deletion. This cannot be undone.", "输入用户名以确认删除。此操作无法撤销。";
    ConfirmMismatch => "The confirmation does not match the handle.", "确认内容与用户名不符。";
    Done => "Done.", "已完成。";
    Back => "Back", "返回";
    AccountNotFound => "No such account.", "账户不存在。";
    Code => "Code", "邀请码";
    Uses => "Used / available", "已用 / 可用";
    Disabled => "disabled", "已禁用";
    Usable => "usable", "可用";
    Disable => "Disable", "禁用";
    CreateCodes => "Create codes", "创建邀请码";
    CodeCount => "How many", "数量";
    UseCount => "Uses per code", "每个可用次数";
    NoCodes => "No invite codes yet.", "尚无邀请码。";
    Error => "Something went wrong.", "出现错误。";
    Server => "Server", "服务器";
    LatestSeq => "Latest firehose seq", "最新事件序号";
    Subscribers => "Firehose subscribers (live)", "事件流订阅者（实时）";
    MaxLag => "Furthest subscriber behind (frames)", "最落后订阅者（帧）";
    Disconnected => "Disconnected for being too slow", "因过慢被断开";
    BlobUploads => "Blob uploads since start (bytes)", "启动以来上传文件（字节）";
    BlobErrors => "Blob store errors since start", "启动以来文件存储错误";
    MailsSent => "Mails sent / failed since start", "启动以来邮件 成功 / 失败";
    OpenStores => "Account stores open", "已打开的账户存储";
    ReplicaLag => "Replication lag (seconds)", "复制延迟（秒）";
    ReplicaOff => "Replication is not configured.", "未配置复制。";
    WritesPerMinute => "Firehose events per minute, last hour", "每分钟事件数（最近一小时）";
    ServerErrors => "Server errors since start", "启动以来服务器错误";
    NoServerErrors => "No server errors since start.", "启动以来无服务器错误。";
    Hub => "Hub moderation", "插件市场审核";
    PendingPlugins => "Pending plugins", "待审核插件";
    PendingCases => "Pending case studies", "待审核案例";
    NothingPending => "Nothing is waiting for review.", "没有待审核的内容。";
    Author => "Author", "作者";
    Moderator => "Review as moderator", "以此审核员身份审核";
    NoModerators => "No hub moderator has an account on this server: name one with ROOKERY_HUB_MODERATORS or cn.pocketbase.hub.setModerator.", "本服务器上没有插件市场审核员账户：请通过 ROOKERY_HUB_MODERATORS 或 cn.pocketbase.hub.setModerator 指定。";
    Note => "Note (optional)", "备注（可选）";
    Approve => "Approve", "通过";
    Reject => "Reject", "拒绝";
    Feature => "Approve and feature", "通过并推荐";
    AuthorizedApps => "Apps signed in with OAuth", "通过 OAuth 登录的应用";
    NoAuthorizedApps => "No app is signed in with OAuth.", "没有通过 OAuth 登录的应用。";
    LastUsed => "Last used", "最近使用";
    Permissions => "Permissions", "权限";
    LastWrite => "Last write", "最近写入";
    ConfirmAction => "I am sure", "我确定";
    ConfirmRequired => "Tick the confirmation box first.", "请先勾选确认框。";
    BlobStorage => "Blob storage used (bytes)", "文件存储占用（字节）";
    SubscriberLags => "Live subscribers, frames behind", "实时订阅者落后帧数";
    RepoBytes => "Size on disk (bytes)", "磁盘占用（字节）";
    AccountTitle => "Your Rookery account", "你的 Rookery 账户";
    AccountSignIn => "Sign in to your account", "登录你的账户";
    Identifier => "Handle or email", "用户名或邮箱";
    Password => "Password", "密码";
    SignInCode => "Sign-in code from your email", "邮件中的登录验证码";
    CodeSent => "We emailed you a sign-in code. Enter it with your password.", "登录验证码已发送到你的邮箱，请与密码一同输入。";
    WrongCredentials => "Wrong handle, email or password.", "用户名、邮箱或密码错误。";
    WrongCode => "That sign-in code is wrong or expired.", "登录验证码错误或已过期。";
    AccountLocked => "Too many failed attempts. Try again later.", "失败次数过多，请稍后再试。";
    AccountSuspended => "This account has been taken down.", "此账户已被下架。";
    EmailConfirmed => "confirmed", "已验证";
    EmailUnconfirmed => "not confirmed", "未验证";
    TwoFactor => "Email sign-in codes", "邮件登录验证码";
    On => "on", "已开启";
    Off => "off", "已关闭";
    AppPasswords => "App passwords", "应用专用密码";
    AppPasswordName => "Name", "名称";
    CreateAppPassword => "Create app password", "创建应用专用密码";
    NewAppPassword => "Your new app password (shown once):", "新的应用专用密码（仅显示一次）：";
    NoAppPasswords => "No app passwords.", "没有应用专用密码。";
    Revoke => "Revoke", "撤销";
    ChangePassword => "Change password", "修改密码";
    CurrentPassword => "Current password", "当前密码";
    PasswordChanged => "Password changed. Sign in again with the new password.", "密码已修改，请使用新密码重新登录。";
    YourData => "Your data", "你的数据";
    DownloadRepo => "Download my repository (CAR file)", "下载我的数据仓库（CAR 文件）";
    EmailSection => "Email", "邮箱";
    SendCode => "Email me a code", "发送验证码到我的邮箱";
    CodeMailed => "A code is on its way to your email address.", "验证码已发送到你的邮箱。";
    NoCodeNeeded => "Your address is not confirmed, so no code is needed.", "你的邮箱尚未验证，无需验证码。";
    EmailCode => "Code from your email", "邮件中的验证码";
    ConfirmEmail => "Confirm email", "验证邮箱";
    UpdateEmail => "Change email", "修改邮箱";
    TurnOn => "Turn on", "开启";
    TurnOff => "Turn off", "关闭";
    DeleteMyAccount => "Delete my account", "删除我的账户";
    DeleteHint => "Deleting removes your repository and blobs from this server for good. Email yourself a code first.", "删除将从本服务器永久移除你的数据仓库和文件。请先发送验证码到你的邮箱。";
    AccountDeleted => "Your account has been deleted.", "你的账户已删除。";
    DeactivateHint => "Deactivating hides your account until you sign in to an app and reactivate it.", "停用后你的账户将被隐藏，直到你在应用中登录并重新启用。";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, value.parse().unwrap());
        headers
    }

    #[test]
    fn accept_language_picks_by_quality() {
        assert_eq!(Lang::from_headers(&HeaderMap::new()), Lang::En);
        assert_eq!(
            Lang::from_headers(&with("zh-CN,zh;q=0.9,en;q=0.8")),
            Lang::ZhHans
        );
        assert_eq!(
            Lang::from_headers(&with("en-US,en;q=0.9,zh;q=0.8")),
            Lang::En
        );
        assert_eq!(
            Lang::from_headers(&with("fr;q=1, zh-Hans;q=0.5")),
            Lang::ZhHans
        );
        assert_eq!(Lang::from_headers(&with("de, fr")), Lang::En);
        assert_eq!(Lang::from_headers(&with("zh;q=0, en;q=0.1")), Lang::En);
        assert_eq!(
            Lang::from_headers(&with("en;q=0.2, zh-TW;q=0.7")),
            Lang::ZhHans
        );
    }

    #[test]
    fn every_text_has_both_languages() {
        for text in Text::ALL {
            let (en, zh) = text.pair();
            assert!(!en.is_empty() && !zh.is_empty(), "{text:?}");
            assert_ne!(en, zh, "{text:?} is not translated");
        }
    }
}
