using System.Runtime.CompilerServices;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Propagation;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Identity.Core.Operations;

/// <summary>
/// The one way a user or an account changes: an operation's body applies its rule and its change to the tracked
/// entities and names what changed (<see cref="Change"/>); then the versions grow, the events and the audit entries are
/// added, and one <c>SaveChanges</c> writes it all in one transaction — both or nothing. A refusal, or a concurrent change
/// (the version token), writes nothing and leaves the tracked entities as they were loaded.
/// </summary>
/// <remarks>
/// Inside a run, ASP.NET Core Identity's user store only tracks (<see cref="AuthorityUserStore"/>), so a body may call
/// <see cref="UserManager{TUser}"/> (password, security stamp, passkeys) without saving half the change. OpenIddict's
/// token and authorization revocations are single statements on the same context, hence in the same transaction.
/// A run inside another run joins it: the outer run saves.
/// </remarks>
public sealed class ChangeUnit(AuthorityDbContext db, IAuditTrail audit, TimeProvider time, OutboxSignal? signal = null)
{
    // The contexts an operation is writing now: the outbox interceptor tells a change that escaped one from one that did not.
    private static readonly ConditionalWeakTable<DbContext, Change> Open = [];

    /// <summary>The operation running on this context, if any.</summary>
    internal static Change? RunningOn(DbContext context) => Open.TryGetValue(context, out var change) ? change : null;

    /// <summary>
    /// An audit entry or outbox row for <paramref name="context"/>'s next write: held by the operation running on it, if
    /// any, untracked until that write (<see cref="Change.Rows"/>, decision 0096); otherwise added to the context.
    /// </summary>
    internal static void Record<TRow>(DbContext context, TRow row)
        where TRow : class
    {
        if (RunningOn(context) is { } change)
        {
            change.Hold(row);
        }
        else
        {
            context.Add(row);
        }
    }

    /// <summary>Runs one operation for <paramref name="actor"/>; see the type's summary.</summary>
    /// <param name="saveOnly">
    /// The body only changes tracked entities (no statement of its own): SaveChanges' own transaction is the run's one
    /// transaction, and nothing is held before it (on SQLite, a transaction begun first locks tables against every
    /// concurrent writer for the whole run: decision 0053).
    /// </param>
    public async Task<OperationResult> RunAsync(Actor actor, Func<Change, Task<OperationResult>> body, CancellationToken cancellationToken,
        bool saveOnly = false)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (Open.TryGetValue(db, out var outer))
        {
            return await body(outer);
        }

        var change = new Change(actor, time.GetUtcNow(), audit);
        await using var transaction = db.Database.CurrentTransaction is null && !saveOnly ? await db.Database.BeginTransactionAsync(cancellationToken) : null;
        // In a transaction of its own, EF Core's savepoint around SaveChanges (SAVEPOINT, then RELEASE: two more statements
        // per change on PostgreSQL) buys nothing: a failed SaveChanges fails the run and the whole transaction is rolled
        // back (decision 0092). A caller's transaction keeps it: the caller may go on after a failed run.
        var savepoints = db.Database.AutoSavepointsEnabled;
        db.Database.AutoSavepointsEnabled = savepoints && transaction is null;
        Open.Add(db, change);
        try
        {
            var result = await body(change);
            if (!result.Succeeded)
            {
                RejectChanges();
                return result;
            }

            await change.WriteAsync(db, cancellationToken);
            switch (await OneStatementWrite.TryAsync(db, change, cancellationToken))
            {
                case OneStatementWrite.Outcome.Written:
                    signal?.Notify(); // committed with its outbox rows (the interceptor sees no SaveChanges to tell it)
                    return result;
                case OneStatementWrite.Outcome.Stale:
                    RejectChanges();
                    return OperationResult.Stale;
            }

            try
            {
                change.MoveRowsTo(db); // the outbox interceptor would too; not left to it
                await db.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateConcurrencyException)
            {
                RejectChanges();
                return OperationResult.Stale;
            }

            if (transaction is not null)
            {
                await transaction.CommitAsync(cancellationToken);
            }

            return result;
        }
        catch
        {
            RejectChanges();
            throw;
        }
        finally
        {
            Open.Remove(db);
            db.Database.AutoSavepointsEnabled = savepoints;
        }
    }

    /// <summary>The tracked entities back as loaded: nothing of a refused or failed run is saved by a later SaveChanges.</summary>
    private void RejectChanges()
    {
        foreach (var entry in db.ChangeTracker.Entries().ToList())
        {
            switch (entry.State)
            {
                case EntityState.Added:
                    entry.State = EntityState.Detached;
                    break;
                case EntityState.Modified:
                    entry.CurrentValues.SetValues(entry.OriginalValues);
                    entry.State = EntityState.Unchanged;
                    break;
                case EntityState.Deleted:
                    entry.State = EntityState.Unchanged;
                    break;
            }
        }
    }
}
