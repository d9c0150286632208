using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Propagation;
using Microsoft.EntityFrameworkCore;

namespace Identity.Core.Operations;

/// <summary>
/// What one operation changed, as its body names it: the users whose change it owns (their version grows once, their
/// regions get what the change means to them), the users whose sessions it ended, and the audit entries, recorded for
/// the run's actor. <see cref="ChangeUnit"/> writes it all with one SaveChanges.
/// </summary>
public sealed class Change
{
    private readonly IAuditTrail _audit;
    private readonly List<ApplicationUser> _users = [];
    private readonly HashSet<ApplicationUser> _snapshots = [];
    private readonly List<Accounts.Account> _accounts = [];
    private readonly List<(ApplicationUser User, string Reason)> _sessionsRevoked = [];
    private readonly List<object> _rows = [];

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

    /// <summary>
    /// The user was created, changed or deleted by this operation: its version grows (once per run; a new user starts at
    /// its first), and its regions get its snapshot — or its deletion — when they see what changed.
    /// </summary>
    public void Changed(ApplicationUser user)
    {
        if (!_users.Contains(user))
        {
            _users.Add(user);
        }
    }

    /// <summary>
    /// As <see cref="Changed(ApplicationUser)"/>, and its regions get its snapshot even when no property they see moved:
    /// a credential change (a password reset) that they must hear of, with the new version.
    /// </summary>
    public void ChangedWithSnapshot(ApplicationUser user)
    {
        Changed(user);
        _snapshots.Add(user);
    }

    /// <summary>
    /// The account was created, changed or deleted by this operation: a changed one's version (its ETag and concurrency
    /// token) grows once per run and its <c>UpdatedAt</c> is the change's time; the writer sends what its regions see.
    /// </summary>
    public void Changed(Accounts.Account account)
    {
        if (!_accounts.Contains(account))
        {
            _accounts.Add(account);
        }
    }

    /// <summary>Every session of the user ended (<c>SessionsRevoked</c> to its regions, after the user's own event).</summary>
    public void SessionsRevoked(ApplicationUser user, string reason) => _sessionsRevoked.Add((user, reason));

    /// <summary>Records an audit entry about <paramref name="user"/>, written with the change.</summary>
    public void Audit(string eventType, ApplicationUser user, object? details = null) =>
        _audit.Record(Actor, eventType, "user", user.Id, user.AccountId, details);

    /// <summary>Records an audit entry about any subject (an account, a region), written with the change.</summary>
    public void Audit(string eventType, string subjectType, string? subjectId, Guid? accountId, object? details = null) =>
        _audit.Record(Actor, eventType, subjectType, subjectId, accountId, details);

    /// <summary>
    /// The audit entries and outbox rows recorded during the run and not yet handed to the context, in the order they
    /// were recorded (the outbox's order). They are held here, untracked, until the run writes: on PostgreSQL's one
    /// command (decision 0094) they are never tracked at all — adding, scanning and detaching them cost the change
    /// tracker ~8 % of the write path's CPU (decision 0096); any SaveChanges on the context takes them first
    /// (<see cref="MoveRowsTo"/>), so what it writes is what it wrote before.
    /// </summary>
    internal IReadOnlyList<object> Rows => _rows;

    /// <summary>Holds an audit entry or outbox row for the run's write (see <see cref="Rows"/>).</summary>
    internal void Hold(object row) => _rows.Add(row);

    /// <summary>The held rows, in their order, added to the context (a SaveChanges is about to write them).</summary>
    internal void MoveRowsTo(DbContext db)
    {
        if (_rows.Count > 0)
        {
            db.AddRange(_rows);
            _rows.Clear();
        }
    }

    /// <summary>The held rows were written without the context (decision 0094).</summary>
    internal void RowsWritten() => _rows.Clear();

    /// <summary>Whether this operation owns the events of this user's change (the outbox interceptor leaves them to it).</summary>
    internal bool Names(ApplicationUser user) => _users.Contains(user);

    /// <summary>Whether this operation owns the events of this account's change (the outbox interceptor leaves them to it).</summary>
    internal bool Names(Guid accountId) => _accounts.Any(a => a.Id == accountId);

    /// <summary>
    /// Versions, then the events, routed by one <see cref="RegionRouting"/>: each account's own (with its users' arrival in
    /// or departure from the regions it moved to or left), each user's own, then the sessions revoked.
    /// </summary>
    internal async Task WriteAsync(AuthorityDbContext db, CancellationToken cancellationToken)
    {
        foreach (var account in _accounts.Where(a => db.Entry(a).State is EntityState.Modified or EntityState.Unchanged))
        {
            account.Version++; // a new account starts at its first; a deleted one's last snapshot carries the version it had
            account.UpdatedAt = Now;
        }

        var routing = new RegionRouting(db);
        if (_accounts.Count > 0)
        {
            // After the versions: an account whose only change is its regions is now modified too.
            var entries = db.ChangeTracker.Entries()
                .Where(e => e.State is EntityState.Added or EntityState.Modified or EntityState.Deleted && e.Entity is Accounts.Account or Accounts.AccountRegion)
                .ToList();
            var moved = new HashSet<string>(StringComparer.Ordinal); // users whose arrival or departure a region move wrote
            foreach (var account in _accounts)
            {
                await db.AddAccountEventsAsync(routing, account.Id, entries, moved, Now, cancellationToken);
            }
        }

        foreach (var user in _users)
        {
            var entry = db.Entry(user);
            if (entry.State is EntityState.Modified or EntityState.Unchanged)
            {
                user.Version++;
            }

            await db.AddUserEventAsync(routing, entry, Now, cancellationToken, always: _snapshots.Contains(user));
        }

        foreach (var (user, reason) in _sessionsRevoked)
        {
            await db.AddSessionsRevokedAsync(routing, user, reason, Now, cancellationToken);
        }
    }
}
