using System.Text.Json;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.Policies;
using Microsoft.EntityFrameworkCore;

namespace Identity.Core.Accounts;

/// <summary>
/// The named changes to an account, each the one home of its rule, its version, its events and its audit entry, written
/// together by one <see cref="ChangeUnit"/> run (one <c>SaveChanges</c>, one transaction). The admin API calls these and
/// only translates HTTP; who may call which (platform administrators, an account's own admins) is the caller's check.
/// </summary>
/// <remarks>
/// No account operation ends sessions: a suspended account's people are refused at their next sign-in and at the admin
/// API (decisions 0036, 0039), their tokens stay until they expire, as before. The events (the account's snapshot to
/// the regions it lives in and left; its users' snapshots or deletions when its regions change) are added by the run
/// (<see cref="Change"/>) from what it changed, routed by the one routing function.
/// </remarks>
public sealed class AccountOperations(ChangeUnit changes, AuthorityDbContext db)
{
    public const int NameMaxLength = 200;

    public const string NameRule = "A name of 1 to 200 characters is required.";

    /// <summary>A region checked a moment ago was deleted before the write: the database refused the link, nothing was written.</summary>
    public const string RegionGoneDetail = "The region was deleted meanwhile: nothing was changed.";

    /// <summary>A new, active account named <paramref name="name"/> (trimmed), living in the <paramref name="regions"/> named (each known).</summary>
    /// <returns>The outcome and, when done, the account as written.</returns>
    /// <remarks>
    /// The regions are checked before the run's transaction begins, as a region being enabled is: on SQLite a read inside
    /// it would hold the database against the very deletion the foreign key is there to catch.
    /// </remarks>
    public async Task<(OperationResult Result, Account? Account)> CreateAsync(string? name, IReadOnlyList<string?>? regions, Actor actor,
        CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        name = name?.Trim();
        if (!IsName(name))
        {
            errors["name"] = [NameRule];
        }

        var requested = regions ?? [];
        if (requested.Any(string.IsNullOrEmpty))
        {
            errors["regions"] = ["Each region must be a region code, not null or empty."];
        }

        var codes = requested.OfType<string>().Where(r => r.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        var known = await db.Regions.Where(r => codes.Contains(r.Code)).Select(r => r.Code).ToListAsync(cancellationToken);
        if (!errors.ContainsKey("regions") && codes.Except(known).FirstOrDefault() is { } unknown)
        {
            errors["regions"] = [$"Unknown region '{unknown}'."];
        }

        if (errors.Count > 0)
        {
            return (OperationResult.Invalid(errors), null);
        }

        Account? account = null;
        var result = await RegionLinkAsync(SaveOnlyAsync(actor, change =>
        {
            account = new Account
            {
                Id = Guid.CreateVersion7(),
                Name = name!,
                Regions = [.. codes.Select(r => new AccountRegion { RegionCode = r })],
                CreatedAt = change.Now,
                UpdatedAt = change.Now,
            };
            db.Accounts.Add(account);
            change.Changed(account);
            change.Audit("account.created", "account", account.Id.ToString(), account.Id, new { name = account.Name, regions = codes });
            return OperationResult.Done;
        }, cancellationToken));
        return (result, result.Succeeded ? account : null);
    }

    /// <summary>Renames the account when <paramref name="name"/> is given (trimmed); the account's version grows either way.</summary>
    public Task<OperationResult> UpdateAsync(Account account, string? name, Actor actor, CancellationToken cancellationToken) =>
        SaveOnlyAsync(actor, change =>
        {
            name = name?.Trim();
            if (name is not null && !IsName(name))
            {
                return OperationResult.Invalid("name", NameRule);
            }

            var before = account.Name;
            account.Name = name ?? account.Name;
            Changed(change, account, "account.updated", new { name = new { before, after = account.Name } });
            return OperationResult.Done;
        }, cancellationToken);

    /// <summary>
    /// Replaces the account's settings document, its policy: parsed strictly (errors name the field under
    /// <c>settings</c>), stored complete with every default written out; its settings version grows, and the audit
    /// entry keeps the document before and after.
    /// </summary>
    public Task<OperationResult> ChangeSettingsAsync(Account account, string document, Actor actor, CancellationToken cancellationToken) =>
        SaveOnlyAsync(actor, change =>
        {
            var policy = AccountPolicy.Parse(document, out var errors);
            if (policy is null)
            {
                return OperationResult.Invalid(errors.ToDictionary(e => e.Key == "$" ? "settings" : "settings." + e.Key, e => e.Value));
            }

            var before = account.Settings;
            account.Settings = policy.ToJson();
            account.SettingsVersion++;
            Changed(change, account, "account.settings_changed", new
            {
                settingsVersion = account.SettingsVersion,
                before = JsonDocument.Parse(before).RootElement,
                after = JsonDocument.Parse(account.Settings).RootElement,
            });
            return OperationResult.Done;
        }, cancellationToken);

    /// <summary>The account's people can no longer sign in or administer; a suspended account is left as it is.</summary>
    public Task<OperationResult> SuspendAsync(Account account, Actor actor, CancellationToken cancellationToken) =>
        SetStatusAsync(account, AccountStatus.Suspended, "account.suspended", actor, cancellationToken);

    /// <summary>The account's people may sign in again; an active account is left as it is.</summary>
    public Task<OperationResult> ActivateAsync(Account account, Actor actor, CancellationToken cancellationToken) =>
        SetStatusAsync(account, AccountStatus.Active, "account.activated", actor, cancellationToken);

    /// <summary>
    /// The account lives in <paramref name="region"/> too (a known region): the region receives the account and its
    /// users. An account already there is left as it is.
    /// </summary>
    public async Task<OperationResult> EnableRegionAsync(Account account, string region, Actor actor, CancellationToken cancellationToken)
    {
        if (!await db.Regions.AnyAsync(r => r.Code == region, cancellationToken))
        {
            return OperationResult.Invalid("region", $"Unknown region '{region}'.");
        }

        if (account.Regions.Any(r => r.RegionCode == region))
        {
            return OperationResult.Done;
        }

        return await RegionLinkAsync(SaveOnlyAsync(actor, change =>
        {
            account.Regions.Add(new AccountRegion { AccountId = account.Id, RegionCode = region });
            Changed(change, account, "account.region_enabled", new { region });
            return OperationResult.Done;
        }, cancellationToken));
    }

    /// <summary>The account leaves <paramref name="region"/>: the region forgets its users. An account not there is left as it is.</summary>
    public Task<OperationResult> DisableRegionAsync(Account account, string region, Actor actor, CancellationToken cancellationToken)
    {
        var link = account.Regions.FirstOrDefault(r => r.RegionCode == region);
        if (link is null)
        {
            return Task.FromResult(OperationResult.Done);
        }

        return SaveOnlyAsync(actor, change =>
        {
            account.Regions.Remove(link);
            Changed(change, account, "account.region_disabled", new { region });
            return OperationResult.Done;
        }, cancellationToken);
    }

    /// <summary>
    /// The account and its users are deleted; its regions are told the account is gone and forget its users. The users
    /// go in one statement inside the run's transaction (no event each: the account's deletion covers them).
    /// </summary>
    public Task<OperationResult> DeleteAsync(Account account, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            await db.Users.Where(u => u.AccountId == account.Id).ExecuteDeleteAsync(cancellationToken);
            db.Accounts.Remove(account);
            change.Changed(account);
            change.Audit("account.deleted", "account", account.Id.ToString(), account.Id, new { name = account.Name });
            return OperationResult.Done;
        }, cancellationToken);

    private Task<OperationResult> SetStatusAsync(Account account, AccountStatus status, string eventType, Actor actor,
        CancellationToken cancellationToken)
    {
        if (account.Status == status)
        {
            return Task.FromResult(OperationResult.Done);
        }

        return SaveOnlyAsync(actor, change =>
        {
            var before = account.Status;
            account.Status = status;
            Changed(change, account, eventType, new { status = new { before, after = status } });
            return OperationResult.Done;
        }, cancellationToken);
    }

    /// <summary>The account changed: its version grows once (the ETag, the concurrency token, the events' version), with its audit entry.</summary>
    private static void Changed(Change change, Account account, string eventType, object details)
    {
        change.Changed(account);
        change.Audit(eventType, "account", account.Id.ToString(), account.Id, details);
    }

    /// <summary>
    /// A run whose body only changes tracked entities: SaveChanges' own transaction is its one transaction, so nothing is
    /// locked while the rule is checked (on SQLite an earlier transaction would hold the database for the whole run).
    /// </summary>
    private Task<OperationResult> SaveOnlyAsync(Actor actor, Func<Change, OperationResult> body, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, change => Task.FromResult(body(change)), cancellationToken, saveOnly: true);

    private static bool IsName(string? name) => !string.IsNullOrEmpty(name) && name.Length <= NameMaxLength;

    /// <summary>A write that links a region: the database's foreign key decides a race with the region's deletion (409, nothing written).</summary>
    private static async Task<OperationResult> RegionLinkAsync(Task<OperationResult> run)
    {
        try
        {
            return await run;
        }
        catch (DbUpdateException ex) when (ex.IsForeignKeyViolation())
        {
            return OperationResult.Conflict(RegionGoneDetail);
        }
    }
}
