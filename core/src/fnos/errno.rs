//! fnOS `errno` codes.
//!
//! Failures carry a numeric `errno` (`{"errno":4352,"result":"fail",...}`).
//! Every code of the public protocol note's table
//! (`shared/protocol/fnos-errno.tsv`) and the few more that `fnos.md`
//! names (10000002 unknown method, the two-factor codes) has its own
//! variant, an English message ([`Errno::message`]) and, where the note
//! gives it, the server's Chinese wording ([`Errno::chinese`]). Any other
//! code keeps its number in [`Errno::Other`].
//!
//! The table is kept compact for firmware: [`Errno::from_code`] is a binary
//! search over one sorted array of codes, and the message tables are only
//! linked into a program that asks for them.
#![deny(clippy::indexing_slicing)]

use core::fmt;

/// Declares the variants in code order, with the sorted code table and the
/// lookups, from one list of rows `index code Name "English" "中文";`.
/// The index is the row's position (a test checks it): it lets the
/// compiler turn [`Errno::nth`] into no table at all, since the variant's
/// discriminant is that same number.
macro_rules! errnos {
    ($($index:literal $code:literal $name:ident $english:literal $chinese:literal;)*) => {
        /// A failure code from the server.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Errno {
            $(
                #[doc = concat!(stringify!($code), ": ", $english, ".")]
                $name,
            )*
            /// Any other code, kept as sent.
            Other(u32),
        }

        /// Every known code, ascending (checked by a test).
        const CODES: &[u32] = &[$($code),*];

        impl Errno {
            /// The variant of `CODES[index]`.
            const fn nth(index: usize) -> Option<Errno> {
                match index {
                    $($index => Some(Errno::$name),)*
                    _ => None,
                }
            }

            /// The numeric code as sent by the server.
            pub const fn code(self) -> u32 {
                match self {
                    $(Errno::$name => $code,)*
                    Errno::Other(code) => code,
                }
            }

            /// A short English description.
            pub const fn message(self) -> &'static str {
                match self {
                    $(Errno::$name => $english,)*
                    Errno::Other(_) => "unrecognised error",
                }
            }

            /// The server's own (Chinese) wording, where the protocol
            /// note gives it.
            pub const fn chinese(self) -> Option<&'static str> {
                let text = match self {
                    $(Errno::$name => $chinese,)*
                    Errno::Other(_) => "",
                };
                if text.is_empty() { None } else { Some(text) }
            }
        }
    };
}

errnos! {
    0 4096 InternalError "internal server error" "系统内部错误";
    1 4097 SystemBusy "the system is busy" "系统繁忙";
    2 4098 OutOfMemory "out of memory" "内存不足";
    3 4099 DiskFull "not enough disk space" "磁盘空间不足";
    4 4100 NotFound "no such file or folder" "文件或目录不存在";
    5 4101 InvalidPath "invalid file name or path" "无效的文件名或路径";
    6 4102 AlreadyExists "a file or folder of that name already exists" "文件或目录已存在";
    7 4103 StorageNotMounted "the storage space does not exist or is not mounted" "存储空间不存在或未挂载";
    8 4104 PathTooLong "file name or path too long" "文件名或文件路径长度超过限制";
    9 4105 DestinationIsFolder "the destination is a folder" "目的路径是目录";
    10 4112 DestinationNotFolder "the destination is not a folder" "目的路径不是目录";
    11 4121 ReadOnlyFileSystem "read-only file system" "文件系统只读";
    12 4128 IoError "I/O error on the server" "I/O错误";
    13 4208 DatabaseError "database read or write error" "数据库读写错误";
    14 4224 NotLoggedIn "not logged in" "没有登录";
    15 4352 PermissionDenied "permission denied (administrators only)" "权限不足";
    16 4386 NoSpace "not enough free space" "可用容量不足";
    17 8192 BadParameter "bad parameter" "参数错误";
    18 36872 ArchivePassword "archive password needed or wrong" "需要解压缩密码或解压缩密码错误";
    19 37120 DownloadError "download error" "下载错误";
    20 37376 ConfigReadError "cannot read the configuration file" "读取配置文件错误";
    21 37377 ConfigWriteError "cannot write the configuration file" "写入配置文件错误";
    22 65280 InvalidOperation "invalid operation" "无效的操作";
    23 65281 OperationNotPermitted "operation not permitted" "无权限操作";
    24 65296 Exists "already exists" "已存在";
    25 65534 SignatureCheckFailed "request signature check failed" "验签失败";
    26 65535 UnknownError "unknown error" "未知错误";
    27 131072 WrongUserOrPassword "wrong user name or password" "用户名或密码错误";
    28 131073 NoSuchUser "no such user" "用户名不存在";
    29 131074 UserExists "the user name already exists" "用户名已存在";
    30 131329 NoSuchGroup "no such user group" "用户群组不存在";
    31 131330 GroupExists "the user group already exists" "用户群组已存在";
    32 135168 InvalidCredential "invalid or expired credential or token" "无效的凭证";
    33 139264 NotOnCurrentUser "not allowed on the logged-in user" "不能对当前登录用户执行该操作";
    34 139296 NotOnDefaultGroup "not allowed on a system default group" "不能对系统默认用户组执行该操作";
    35 196608 DiskBusy "disk busy" "磁盘繁忙";
    36 196609 TooFewDisks "too few disks for this operation" "磁盘数量不足以执行该操作";
    37 196610 TooManyDisks "more disks than needed" "磁盘数量超过需要";
    38 196624 PoolStateForbids "not allowed in the storage pool's current state" "存储池当前状态下不允许该操作";
    39 196640 DiskGroupMismatch "disk groups do not match" "diskGroup不一致";
    40 196656 SectorSizeMismatch "disks' logical sector sizes differ" "硬盘逻辑扇区大小不一致";
    41 196752 HomeCreateFailed "cannot create the user's folder" "创建用户目录失败";
    42 196753 QuotaSetFailed "cannot set the user's quota" "设置用户配额失败";
    43 258048 StorageManagerBusy "the storage manager is busy, try again later" "存储管理器繁忙，请稍后再试";
    44 262144 AppInstallPath "wrong app installation path" "App安装路径错误";
    45 266240 AppNotRunning "the app is not installed or not running" "该App未安装或未启动";
    46 327681 NoStorageSpace "no storage space available" "无可用存储空间";
    47 327685 DestinationInsideSource "the destination is inside the source folder" "目标目录是源目录的子目录";
    48 327697 WrongFileSize "wrong file size" "错误的文件大小";
    49 327848 SharePermissionFailed "cannot set share permissions" "共享权限设置失败";
    50 327849 AlreadyShared "the path is already shared" "该路径已被共享";
    51 327850 ShareNameExists "the share name already exists" "共享名称已存在";
    52 327851 RemoteFolderExists "the remote folder already exists" "远程目录已存在";
    53 393232 ExternalDomainUnavailable "the external access domain is unavailable" "不可用的外部访问域名";
    54 2031616 UpdateCheckFailed "checking for updates failed" "检查更新失败";
    55 2031620 AlreadyUpToDate "already the latest version" "已是最新版本";
    56 2031621 UpdateScriptFailed "the update script failed" "执行更新脚本出错";
    57 2031632 UpdateInProgress "an update is in progress" "正在更新中";
    58 3000005 ShareNotAllowed "sharing failed: no permission to share" "分享失败，无分享权限";
    59 3000011 ShareMountedFolder "sharing failed: mounted folders cannot be shared" "分享失败，不支持分享挂载目录";
    60 3000012 ShareFileMissing "sharing failed: the file does not exist" "分享失败，文件不存在";
    61 3000013 ShareLinkOrMount "sharing failed: symbolic links and mounts cannot be shared" "分享失败，不支持分享软链、挂载等";
    62 10000002 UnknownMethod "unknown method" "";
    63 33554944 PortInUse "the port is already in use" "端口号已被占用";
    64 33554945 PortReserved "the port is reserved by the system" "系统预留端口号";
    65 33555718 NotSupported "operation not supported" "操作不支持";
    66 33555719 PortOccupied "the port is occupied" "端口被占用";
    67 51380224 InvalidMountType "invalid mount type" "无效的挂载类型";
    68 51380225 RemoteUnreachable "cannot reach the remote service, check the details entered" "无法连接到远端服务，请检查输入的信息";
    69 51380226 RemoteMountExists "this remote mount already exists" "此远程挂载已存在，请勿重复添加";
    70 51380227 MountPathQueryFailed "cannot query the mount path" "查询挂载路径失败";
    71 51380228 RemoteWrongUserOrPassword "remote mount: wrong user name or password" "用户名或密码错误";
    72 51380229 RemoteRefused "the remote server refused the connection" "连接被对方服务器拒绝";
    73 51380230 RemotePathMissing "remote mount: the path does not exist" "路径不存在，连接失败";
    74 51380231 RemotePathWrong "remote mount: wrong path, check the details entered" "指定的路径错误，请检查输入的信息";
    75 51380232 RemoteNoPermission "remote mount: no permission for this operation" "没有权限进行此操作";
    76 51380233 RemoteTimeout "remote mount: the request timed out, try again" "请求超时，请重试";
    77 52428823 ContainerUnreachable "connection failed, check that the container is running" "连接失败，请确认容器是否已启动";
    78 84934657 InvalidTaskId "invalid task id" "无效的任务 ID";
    79 84934658 InvalidStorageType "invalid storage type" "无效的存储类型";
    80 84934659 UnsupportedStorageType "unsupported storage type" "不支持的存储类型";
    81 84934660 InvalidAddress "invalid address" "无效的地址";
    82 84934661 TaskUidMismatch "the task does not belong to this user" "任务 ID 与 UID 不匹配，无法操作";
    83 84934662 TooManyTasks "the user has too many tasks" "用户任务数已超过最大限量";
    84 84934663 UnsupportedStorageKind "unsupported storage type" "不支持的存储类型";
    85 84934664 BackupFoldersOverlap "local backup folders contain each other" "本地备份时目录冲突，有相互包含的情况";
    86 84934665 BackupSourceMissing "the local source folder does not exist" "本地源目录不存在";
    87 84934666 TaskNameExists "a task of that name already exists" "任务名称已存在";
    88 84934667 TaskInternalError "internal error, cannot run" "内部错误，无法执行";
    89 84934668 BackupSourceEmpty "the source folder is empty, nothing to back up" "源目录为空，无可备份文件";
    90 84934669 DuplicateSourcePaths "duplicate source paths" "源路径存在重复";
    91 84934688 InvalidLocationId "invalid storage location id" "无效的存储位置 ID";
    92 84934689 ConnectionError "connection error" "连接错误";
    93 84934690 LocationUidMismatch "the storage location does not belong to this user" "存储位置 ID 与 UID 不匹配，无法操作";
    94 84934691 DestinationInUse "a task uses this destination, it cannot be deleted" "有任务正在使用此目的地，无法删除";
    95 84934692 AuthServiceFailed "calling the authorisation service failed" "调用授权服务失败";
    96 84934736 OperationFailed "operation failed" "操作异常";
    97 84934737 ConnectFailed "connection failed" "连接失败";
    98 84934738 QueriedFolderMissing "the queried folder does not exist" "查询的目录不存在";
    99 84934739 FolderExists "the folder already exists" "目录已经存在，无法重复创建";
    100 84934740 FolderCreateFailed "cannot create the folder" "创建目录失败";
    101 84934741 CloudDownloadError "error while downloading" "下载时出错";
    102 84934742 CloudUploadError "error while uploading" "上传时出错";
    103 84934743 FolderMissing "the folder does not exist" "目录不存在";
    104 84934744 FileCreateFailed "cannot create the file" "创建文件失败";
    105 84934745 LocalFileMissing "the local file does not exist" "本地文件不存在";
    106 84934746 CloudAuthExpired "cloud drive authorisation unavailable or expired" "网盘授权不可用或过期";
    107 84934747 CloudInvalidFolderName "invalid cloud drive folder name" "云盘非法目录名";
    108 84934748 DestinationPermission "wrong permissions on the destination folder" "目标目录权限错误";
    109 84934749 SourcePermission "wrong permissions on the source file" "来源文件权限错误";
    110 84934750 FileWriteError "file write error" "文件写入错误";
    111 84934751 CloudWrongUserOrPassword "wrong user name or password" "用户名或者密码错误";
    112 84934752 ServerRefused "refused by the server, check its settings" "服务端拒绝，需要查看服务设置";
    113 84934753 DestinationFull "not enough space at the destination" "目标存储空间不足";
    114 100000001 TooFrequent "too many operations, try again later" "操作太频繁，请稍后重试";
    115 100000002 InvalidArgument "invalid argument" "参数错误";
    116 100000003 DuplicateRequest "duplicate request" "重复的请求";
    117 100000004 InvalidAction "invalid operation" "无效的操作";
    118 100000006 ServerBusy "the server is busy, try again later" "服务器开小差了，请稍后重试";
    119 100000201 BadInput "bad input parameter" "入参错误";
    120 100000202 ConfigSaveFailed "cannot save the configuration" "保存配置失败";
    121 100000203 ConfigLoadFailed "cannot load the configuration" "加载配置失败";
    122 100000204 GatewayRestartFailed "cannot restart the gateway" "重启网关失败";
    123 100000205 PortTaken "the port is taken" "端口被占用";
    124 100000206 BroadcastFailed "broadcast failed" "广播失败";
    125 100000207 AvahiRestartFailed "cannot restart avahi" "重启avahi失败";
    126 100000210 FirewallBlocksPort "a firewall rule blocks a key system port" "系统关键端口被防火墙规则拦截";
    127 100010001 TaskAddFailed "cannot add the task" "添加任务失败";
    128 100010002 MissingOutputDir "the request lacks outputDir" "请求缺少outputDir参数";
    129 100010003 CopyFolderMissing "the folder to copy does not exist" "拷贝目录不存在";
    130 100010004 CopyFolderCreateFailed "cannot create the folder" "创建目录失败";
    131 100010005 CopyFolderNotWritable "the copy folder is not writable" "拷贝目录无法写入";
    132 100010006 CopyDiskFull "not enough disk space" "磁盘空间不足";
    133 100010007 MissingTaskId "the request lacks taskId" "请求缺少taskId参数";
    134 100010008 DuplicateTask "duplicate task" "重复任务";
    135 100010009 FileInfoFailed "cannot read file information" "获取文件信息失败";
    136 100010010 FolderOpenFailed "cannot open the folder" "打开目录失败";
    137 100010011 FileOpenFailed "cannot open the file" "打开文件失败";
    138 100010012 NoSuchTask "no such task" "任务不存在";
    139 100020001 NoSuchInterface "no such network interface" "网口不存在";
    140 100020002 InterfaceAddFailed "cannot add the network interface" "添加网口失败";
    141 100020003 OvsBindFailed "cannot bind the OVS bridge" "ovs 网桥绑定失败";
    142 100020004 OvsUnbindFailed "cannot unbind the OVS bridge" "ovs 网桥解绑失败";
    143 100020005 WirelessChangeFailed "cannot change the wireless network" "无线网络修改失败";
    144 100020006 WirelessNotFound "wireless network not found" "找不到指定的无线网络";
    145 100020007 WirelessConnectFailed "cannot connect to the wireless network" "无线网络连接失败";
    146 100020008 WrongPassword "wrong password" "密码不正确";
    147 100020009 WirelessSecurityMismatch "wireless security type does not match" "无线网络安全类型不匹配";
    148 102570104 WrongTwoFactorCode "wrong two-factor authentication code" "";
    149 102570109 TwoFactorAccessTokenExpired "two-factor access token expired" "";
    150 849346923 IllegalToken "illegal token" "非法的 Token";
    151 849346924 StorageConfigExists "the same storage configuration already exists" "已经存在相同的存储配置";
}

impl Errno {
    /// The variant for a numeric code.
    pub fn from_code(code: u32) -> Self {
        CODES
            .binary_search(&code)
            .ok()
            .and_then(Errno::nth)
            .unwrap_or(Errno::Other(code))
    }

    /// Every code with a variant, ascending.
    pub fn known() -> impl Iterator<Item = Errno> {
        (0..CODES.len()).filter_map(Errno::nth)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.message(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_table_is_ascending_and_matches_the_variants() {
        assert!(CODES.windows(2).all(|w| matches!(w, [a, b] if a < b)));
        assert_eq!(Errno::known().count(), CODES.len());
        assert_eq!(Errno::nth(CODES.len()), None);
        for (i, &code) in CODES.iter().enumerate() {
            let errno = Errno::nth(i).expect("a row per code");
            assert_eq!(errno.code(), code, "row {i}");
            assert_eq!(Errno::from_code(code), errno);
        }
    }

    #[test]
    fn unknown_codes_keep_their_number() {
        for code in [0, 1, 7, 4095, 4353, u32::MAX] {
            assert_eq!(Errno::from_code(code), Errno::Other(code));
            assert_eq!(Errno::from_code(code).code(), code);
            assert_eq!(Errno::from_code(code).chinese(), None);
        }
    }

    #[test]
    fn codes_from_fnos_md_without_a_chinese_original_have_none() {
        assert_eq!(Errno::from_code(10000002), Errno::UnknownMethod);
        assert_eq!(Errno::UnknownMethod.chinese(), None);
        assert_eq!(Errno::from_code(4100).chinese(), Some("文件或目录不存在"));
    }
}
