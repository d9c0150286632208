using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.AdminConsole;

/// <summary>
/// The console's session follows its user's security stamp, as the SSO session does (Identity's stamp check): revoking
/// the user's sessions, a password change or a reset of their second factors (each a new stamp) ends it at the next page.
/// </summary>
public static class ConsoleSession
{
    public const string StampClaim = "identity_console_stamp";

    public static Task<string?> StampAsync(AuthorityDbContext db, string? subject, CancellationToken cancellationToken) =>
        subject is null
            ? Task.FromResult<string?>(null)
            : db.Users.AsNoTracking().Where(u => u.Id == subject).Select(u => u.SecurityStamp).SingleOrDefaultAsync(cancellationToken);
}
