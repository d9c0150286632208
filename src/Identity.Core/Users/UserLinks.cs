using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Identity.Core.Data;
using Identity.Core.Operations;
using Microsoft.EntityFrameworkCore;

namespace Identity.Core.Users;

/// <summary>What a link's token is worth now.</summary>
public enum LinkState
{
    Valid,
    Expired,

    /// <summary>Used, or voided by a newer link of the same purpose or by the change it was for.</summary>
    Ended,
    Unknown,
}

/// <summary>
/// The single-use links (<see cref="UserLink"/>): issued inside an operation (the user's older links of that purpose are
/// voided in the same transaction), found by the hash of their token, and taken by a conditional update, so that two
/// uses at once succeed once.
/// </summary>
public sealed class UserLinks(AuthorityDbContext db)
{
    /// <summary>A new link for <paramref name="user"/>, valid for <paramref name="lifetime"/>; returns its token (256 random bits).</summary>
    public async Task<string> IssueAsync(Change change, ApplicationUser user, string purpose, string address, TimeSpan lifetime,
        CancellationToken cancellationToken)
    {
        await VoidAsync(change, user.Id, purpose, cancellationToken);
        var token = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        db.UserLinks.Add(new UserLink
        {
            UserId = user.Id,
            Purpose = purpose,
            TokenHash = Hash(token),
            Email = address,
            CreatedAt = change.Now,
            ExpiresAt = change.Now + lifetime,
        });
        return token;
    }

    /// <summary>Ends every live link of the user for <paramref name="purpose"/>.</summary>
    public Task VoidAsync(Change change, string userId, string purpose, CancellationToken cancellationToken) =>
        db.UserLinks.Where(l => l.UserId == userId && l.Purpose == purpose && l.EndedAt == null)
            .ExecuteUpdateAsync(l => l.SetProperty(x => x.EndedAt, change.Now), cancellationToken);

    /// <summary>The link of <paramref name="token"/> for <paramref name="purpose"/>, and what it is worth at <paramref name="now"/>.</summary>
    public async Task<(LinkState State, UserLink? Link)> FindAsync(string? token, string purpose, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 100)
        {
            return (LinkState.Unknown, null);
        }

        var hash = Hash(token);
        var link = await db.UserLinks.AsNoTracking().SingleOrDefaultAsync(l => l.TokenHash == hash && l.Purpose == purpose, cancellationToken);
        return link switch
        {
            null => (LinkState.Unknown, null),
            { EndedAt: not null } => (LinkState.Ended, link),
            _ when link.ExpiresAt <= now => (LinkState.Expired, link),
            _ => (LinkState.Valid, link),
        };
    }

    /// <summary>
    /// Uses the link of <paramref name="token"/> inside <paramref name="change"/>: valid, and ended by this call (a
    /// conditional update: of two uses at once, one gets it). Its state otherwise.
    /// </summary>
    public async Task<(LinkState State, UserLink? Link)> TakeAsync(Change change, string? token, string purpose, CancellationToken cancellationToken)
    {
        var (state, link) = await FindAsync(token, purpose, change.Now, cancellationToken);
        if (state != LinkState.Valid)
        {
            return (state, link);
        }

        var taken = await db.UserLinks.Where(l => l.Id == link!.Id && l.EndedAt == null)
            .ExecuteUpdateAsync(l => l.SetProperty(x => x.EndedAt, change.Now), cancellationToken);
        return taken == 1 ? (LinkState.Valid, link) : (LinkState.Ended, link);
    }

    /// <summary>
    /// The address the user is moving to: that of their live verification link when it is not their current address
    /// (decision 0085: a pending address lives only in its link, and lapses with it); null when none.
    /// </summary>
    public async Task<string?> PendingAddressAsync(ApplicationUser user, DateTimeOffset now, CancellationToken cancellationToken) =>
        (await PendingChangeAsync(user, now, cancellationToken))?.Address;

    /// <summary>The pending address with when its live link was sent and until when it works (what an admin is shown).</summary>
    public async Task<PendingEmail?> PendingChangeAsync(ApplicationUser user, DateTimeOffset now, CancellationToken cancellationToken) =>
        (await PendingChangesAsync([user], now, cancellationToken)).GetValueOrDefault(user.Id);

    /// <summary>
    /// The pending changes of several users (a page of a list) in one statement, by user id; users with none are absent.
    /// Each is the user's newest live verification link, kept when it has not lapsed and names another address.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, PendingEmail>> PendingChangesAsync(IReadOnlyCollection<ApplicationUser> users, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        if (users.Count == 0)
        {
            return new Dictionary<string, PendingEmail>(StringComparer.Ordinal);
        }

        var ids = users.Select(u => u.Id).ToList();
        // Live links are few per user (a new one ends the previous): all of them in one read, the newest chosen here.
        var live = await db.UserLinks.AsNoTracking()
            .Where(l => ids.Contains(l.UserId) && l.Purpose == UserLinkPurposes.EmailVerification && l.EndedAt == null)
            .Select(l => new { l.Id, l.UserId, Pending = new PendingEmail(l.Email, l.CreatedAt, l.ExpiresAt) })
            .ToListAsync(cancellationToken);
        var newest = live.GroupBy(l => l.UserId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.MaxBy(l => l.Id)!.Pending, StringComparer.Ordinal);
        return users
            .Where(u => newest.TryGetValue(u.Id, out var link) && link.ExpiresAt > now && !string.Equals(link.Address, u.Email, StringComparison.OrdinalIgnoreCase))
            .ToDictionary(u => u.Id, u => newest[u.Id], StringComparer.Ordinal);
    }

    /// <summary>How many links of <paramref name="purpose"/> the user was sent since <paramref name="since"/>.</summary>
    public Task<int> CountSinceAsync(string userId, string purpose, DateTimeOffset since, CancellationToken cancellationToken) =>
        db.UserLinks.CountAsync(l => l.UserId == userId && l.Purpose == purpose && l.CreatedAt >= since, cancellationToken);

    public static string Hash(string token) => Base64Url.EncodeToString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}
