namespace Identity.Server.AdminConsole;

/// <summary>
/// What the console's layout shows around every page: the navigation (a page is listed here to appear in it) and the
/// notice left by the last action.
/// </summary>
public static class ConsoleLayout
{
    public const string NoticeKey = "ConsoleNotice";

    /// <summary>The console's sections, in the navigation's order; <c>PlatformOnly</c> ones are hidden from account admins.</summary>
    public static IReadOnlyList<NavigationItem> Sections { get; } =
    [
        new("Accounts", ConsoleClient.BasePath + "/accounts", PlatformOnly: false),
        new("Clients", ConsoleClient.BasePath + "/clients", PlatformOnly: true),
        new("Platform admins", ConsoleClient.BasePath + "/platform-admins", PlatformOnly: true),
        new("Audit log", ConsoleClient.BasePath + "/audit", PlatformOnly: false),
        new("Outbox", ConsoleClient.BasePath + "/outbox", PlatformOnly: true),
        new("Token keys", ConsoleClient.BasePath + "/keys", PlatformOnly: true),
    ];

    public static IEnumerable<NavigationItem> For(Admin.AdminActor admin) => Sections.Where(s => admin.IsPlatformAdmin || !s.PlatformOnly);

    /// <summary>The section a path belongs to, for <c>aria-current</c>.</summary>
    public static bool IsCurrent(NavigationItem item, PathString path) => path.StartsWithSegments(item.Path, StringComparison.OrdinalIgnoreCase);
}

public sealed record NavigationItem(string Title, string Path, bool PlatformOnly);
