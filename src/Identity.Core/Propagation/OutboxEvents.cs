using System.Text.Json;
using Identity.Contracts;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Policies;
using Microsoft.EntityFrameworkCore;

namespace Identity.Core.Propagation;

/// <summary>
/// Turns users and accounts into the event contracts and adds them to the outbox, one row per region the account
/// lives in. Rows are only added to the context: they are written by the caller's SaveChanges, in its transaction.
/// </summary>
public static class OutboxEvents
{
    /// <summary>How payloads are written; the dispatcher reads them back with the same options.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    /// <summary>The contract types by <see cref="OutboxMessage.MessageType"/>.</summary>
    public static readonly IReadOnlyDictionary<string, Type> Types = new[]
    {
        typeof(UserChanged), typeof(UserDeleted), typeof(AccountChanged), typeof(SessionsRevoked),
    }.ToDictionary(t => t.Name, StringComparer.Ordinal);

    public static UserChanged Snapshot(ApplicationUser user, DateTimeOffset now) => new()
    {
        UserId = user.Id,
        AccountId = user.AccountId ?? Guid.Empty,
        Email = user.Email ?? "",
        DisplayName = user.DisplayName,
        Role = user.Role ?? AccountRoles.Member,
        Status = user.Status == UserStatus.Disabled ? UserStatuses.Disabled : UserStatuses.Active,
        MfaEnrolled = user.TwoFactorEnabled,
        LockedOutUntil = user.LockoutEnd > now ? user.LockoutEnd : null,
        Version = user.Version,
        ChangedAt = now,
    };

    public static AccountChanged Snapshot(Account account, IReadOnlyList<string> regions, string? status, DateTimeOffset now)
    {
        var policy = AccountPolicy.Parse(account.Settings, out _) ?? new AccountPolicy();
        return new AccountChanged
        {
            AccountId = account.Id,
            Name = account.Name,
            Status = status ?? (account.Status == AccountStatus.Suspended ? "suspended" : "active"),
            Regions = regions,
            MfaRequirement = JsonNamingPolicy.CamelCase.ConvertName(policy.Mfa.Requirement.ToString()),
            SessionLifetime = policy.Session.Lifetime,
            Version = account.Version,
            ChangedAt = now,
        };
    }

    /// <summary>Adds one outbox row per region.</summary>
    public static void Add<T>(this AuthorityDbContext db, IEnumerable<string> regions, T message, Guid? accountId, string? userId, DateTimeOffset now)
        where T : class
    {
        var payload = JsonSerializer.Serialize(message, JsonOptions);
        foreach (var region in regions)
        {
            db.Outbox.Add(new OutboxMessage
            {
                Region = region,
                MessageType = typeof(T).Name,
                Payload = payload,
                AccountId = accountId,
                UserId = userId,
                CreatedAt = now,
            });
        }
    }

    /// <summary>
    /// Tells the user's regions that every session and token of the user was revoked. Call before SaveChanges in the
    /// transaction that revokes them.
    /// </summary>
    public static async Task AddSessionsRevokedAsync(this AuthorityDbContext db, ApplicationUser user, string reason, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        if (user.AccountId is not { } accountId)
        {
            return;
        }

        var regions = await new RegionRouting(db).OfUserAsync(db.Entry(user), accountId, cancellationToken);
        db.Add(regions, new SessionsRevoked { UserId = user.Id, AccountId = accountId, Reason = reason, RevokedAt = now }, accountId, user.Id, now);
    }
}
