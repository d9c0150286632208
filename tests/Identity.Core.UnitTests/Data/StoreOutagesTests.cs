using System.Net.Sockets;
using Identity.Core.Data;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Identity.Core.UnitTests.Data;

/// <summary>Which database failures are answered 503 (decision 0083), and which are not: precisely, not "any exception".</summary>
public sealed class StoreOutagesTests
{
    [Theory]
    [InlineData("57P01")] // admin_shutdown: pg_ctl stop while a connection was open
    [InlineData("57P02")] // crash_shutdown
    [InlineData("57P03")] // cannot_connect_now: starting up or shutting down
    [InlineData("53300")] // too_many_connections
    [InlineData("08006")] // connection_failure
    [InlineData("57014")] // query_canceled by statement_timeout
    public void IsStoreOutage_PostgresCannotServe_True(string sqlState)
    {
        Assert.True(Postgres(sqlState).IsStoreOutage());
    }

    [Theory]
    [InlineData("23505")] // unique_violation: a conflict, answered by the code that writes
    [InlineData("23503")] // foreign_key_violation
    [InlineData("40001")] // serialization_failure
    [InlineData("40P01")] // deadlock_detected
    [InlineData("42P01")] // undefined_table: a missing migration is a fault, not an outage
    [InlineData("08P01")] // protocol_violation
    [InlineData("28P01")] // invalid_password: configuration, not an outage
    public void IsStoreOutage_PostgresRefusedTheStatement_False(string sqlState)
    {
        Assert.False(Postgres(sqlState).IsStoreOutage());
    }

    [Fact]
    public void IsStoreOutage_ConnectionRefusedOrTimedOut_TrueAlsoWhenWrappedByEfCore()
    {
        var refused = new NpgsqlException("Failed to connect", new SocketException((int)SocketError.ConnectionRefused));
        var timedOut = new NpgsqlException("Exception while reading from stream", new TimeoutException());

        Assert.True(refused.IsStoreOutage());
        Assert.True(timedOut.IsStoreOutage());
        Assert.True(new DbUpdateException("An error occurred while saving", timedOut).IsStoreOutage());
        Assert.True(new InvalidOperationException("wrapped", new DbUpdateException("saving", refused)).IsStoreOutage());
    }

    [Fact]
    public void IsStoreOutage_NotFromTheDatabase_False()
    {
        // A socket or a time-out alone may be SMTP, a CRL download or the broker: not the database's outage.
        Assert.False(new SocketException((int)SocketError.ConnectionRefused).IsStoreOutage());
        Assert.False(new TimeoutException().IsStoreOutage());
        Assert.False(new InvalidOperationException("bug").IsStoreOutage());
        Assert.False(new NpgsqlException("A command is already in progress").IsStoreOutage());
        Assert.False(new DbUpdateException("conflict", Postgres("23505")).IsStoreOutage());
    }

    [Fact]
    public void IsStoreOutage_Cancelled_False()
    {
        // The client went away and Npgsql cancelled the statement (57014 inside the cancellation): no 503 for nobody.
        Assert.False(new OperationCanceledException("cancelled", Postgres("57014")).IsStoreOutage());
    }

    [Theory]
    [InlineData(5, true)] // SQLITE_BUSY after Default Timeout
    [InlineData(6, true)] // SQLITE_LOCKED (shared cache)
    [InlineData(10, true)] // SQLITE_IOERR
    [InlineData(14, true)] // SQLITE_CANTOPEN
    [InlineData(19, false)] // SQLITE_CONSTRAINT
    [InlineData(1, false)] // SQLITE_ERROR (a bad statement)
    public void IsStoreOutage_Sqlite_ByErrorCode(int code, bool outage)
    {
        Assert.Equal(outage, new SqliteException("sqlite", code).IsStoreOutage());
    }

    private static PostgresException Postgres(string sqlState) => new("message", "ERROR", "ERROR", sqlState);
}
