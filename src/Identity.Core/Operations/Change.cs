using Identity.Core.Audit;
using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;

namespace Identity.Core.Operations;

/// <summary>
/// What one operation changed, as its body names it: the users whose snapshot a region sees (their version grows once),
/// and the audit entries, recorded for the run's actor. <see cref="ChangeUnit"/> writes it all with one SaveChanges.
/// </summary>
public sealed class Change
{
    private readonly IAuditTrail _audit;
    private readonly List<ApplicationUser> _users = [];

    internal Change(Actor actor, DateTimeOffset now, IAuditTrail audit)
    {
        Actor = actor;
        Now = now;
        _audit = audit;
    }

    /// <summary>Who makes the change: audit entries name them.</summary>
    public Actor Actor { get; }

    /// <summary>The one time of the change: audit entries, events and dates written by it carry it.</summary>
    public DateTimeOffset Now { get; }

    /// <summary>The user changed in a way a region may see: its version grows (once per run), its regions get the snapshot.</summary>
    public void Changed(ApplicationUser user)
    {
        if (!_users.Contains(user))
        {
            _users.Add(user);
        }
    }

    /// <summary>Records an audit entry about <paramref name="user"/>, written with the change.</summary>
    public void Audit(string eventType, ApplicationUser user, object? details = null) =>
        _audit.Record(Actor, eventType, "user", user.Id, user.AccountId, details);

    /// <summary>Records an audit entry about any subject (an account, a region), written with the change.</summary>
    public void Audit(string eventType, string subjectType, string? subjectId, Guid? accountId, object? details = null) =>
        _audit.Record(Actor, eventType, subjectType, subjectId, accountId, details);

    /// <summary>Each changed user's version grows by one; a new user starts at its first.</summary>
    internal void BumpVersions(AuthorityDbContext db)
    {
        foreach (var user in _users)
        {
            if (db.Entry(user).State is EntityState.Modified or EntityState.Unchanged)
            {
                user.Version++;
            }
        }
    }
}
