using System.Text.Json;
using Identity.Core.Data;
using Microsoft.AspNetCore.DataProtection;

namespace Identity.Core.Email;

/// <summary>
/// Where operations put the emails their change causes: added to the unit of work, so the change's one
/// <c>SaveChanges</c> writes them with it (both or neither). The server's worker sends them.
/// </summary>
public sealed class OutgoingEmail(AuthorityDbContext db, IDataProtectionProvider protection, TimeProvider time)
{
    private const string Purpose = "Identity.Email.Queue";

    /// <summary>Queues <paramref name="content"/> for <paramref name="to"/>; sent after the transaction commits.</summary>
    public void Queue(string to, string kind, string? userId, EmailContent content)
    {
        var now = time.GetUtcNow();
        db.EmailMessages.Add(new EmailMessage
        {
            To = to,
            Subject = content.Subject,
            ProtectedBody = Protector(protection).Protect(JsonSerializer.Serialize(new Body(content.Text, content.Html))),
            Kind = kind,
            UserId = userId,
            CreatedAt = now,
            NextAttemptAt = now,
        });
    }

    /// <summary>The plain-text and HTML bodies of a queued message.</summary>
    public static (string Text, string Html) Read(IDataProtectionProvider protection, EmailMessage message)
    {
        var body = JsonSerializer.Deserialize<Body>(Protector(protection).Unprotect(message.ProtectedBody))!;
        return (body.Text, body.Html);
    }

    private static IDataProtector Protector(IDataProtectionProvider protection) => protection.CreateProtector(Purpose);

    private sealed record Body(string Text, string Html);
}
